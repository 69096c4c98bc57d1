"""fleetbgp: a health-checked BGP speaker that never touches the kernel RIB/FIB."""

__version__ = "0.2.0"
