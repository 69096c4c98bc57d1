"""netlab: a small, stdlib-only harness for real-peer BGP tests.

Network namespaces joined by veth pairs (IPv4, IPv6 global and link-local),
processes started inside them and stopped by PID, and drivers for the peers
that nobody in this project wrote: BIRD 2, GoBGP, ExaBGP, plus tshark and
nstat as independent oracles, and a driver for our own agent ``fleetbgp``.

Typical use (tests/interop/conftest.py and bench/ use it the same way)::

    from netlab import Lab, Bird, FleetbgpAgent

    with Lab() as lab:                       # unique prefix "fbt-<id>", always torn down
        router, server = lab.namespace("r"), lab.namespace("s")
        link = lab.link(router, server)  # 10.255.N.1/30 <-> .2, fd00:fb:0:N::1/64 <-> ::2, fe80::1 <-> ::2
        bird = Bird(lab, router, ...)
        ...

Everything a Lab creates is registered and removed by ``Lab.close()``, by an
atexit hook, and on SIGTERM; ``cleanup_stale()`` removes leftovers of dead runs.
"""

from .bfd import BirdBfdIface, BirdBfdSession, FrrBfdd, FrrBfdPeer, bird_bfd_protocol
from .bird import Bird, BirdPeer, BirdRoute, parse_bird_routes
from .capture import Capture, CaptureReport
from .compare import diff, expected
from .errors import NetlabError, WaitTimeout
from .exabgp import ExaBgp
from .exaconf import Neighbor, Process, Route, render_config
from .fleetbgp import FleetbgpAgent
from .flowspec import BirdFlow, gobgp_flow_actions, gobgp_flow_rib, parse_bird_flows
from .gobgp import GoBgp, GoBgpPeer
from .ns import Lab, Link, Namespace, cleanup_stale, install_signal_cleanup, ns_run, run
from .nstat import nstat_counter
from .proc import Proc
from .util import wait_until, which_or_fail

__all__ = [
    "Bird",
    "BirdBfdIface",
    "BirdBfdSession",
    "BirdFlow",
    "BirdPeer",
    "BirdRoute",
    "Capture",
    "CaptureReport",
    "ExaBgp",
    "FleetbgpAgent",
    "FrrBfdPeer",
    "FrrBfdd",
    "GoBgp",
    "GoBgpPeer",
    "Lab",
    "Link",
    "Namespace",
    "Neighbor",
    "NetlabError",
    "Proc",
    "Process",
    "Route",
    "WaitTimeout",
    "bird_bfd_protocol",
    "cleanup_stale",
    "diff",
    "expected",
    "gobgp_flow_actions",
    "gobgp_flow_rib",
    "install_signal_cleanup",
    "ns_run",
    "nstat_counter",
    "parse_bird_flows",
    "parse_bird_routes",
    "render_config",
    "run",
    "wait_until",
    "which_or_fail",
]
