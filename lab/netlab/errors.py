"""Exceptions raised by netlab."""


class NetlabError(RuntimeError):
    """A lab operation failed (command error, process died, bad output)."""


class WaitTimeout(NetlabError, AssertionError):
    """A bounded wait ran out. Subclasses AssertionError so pytest shows it as a test failure."""
