"""ExaBGP 5.0.x driver: as a sender (static routes in its config, reload with SIGUSR1) and as a
receiver (an API process appends every JSON message to a file; ``rib()`` replays it)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence

from .errors import NetlabError
from .exaconf import Neighbor, Process, render_config
from .ns import Lab, Namespace, run
from .util import venv_tool, wait_until

_RECEIVER = r'''
import sys
out = open(sys.argv[1], "a", buffering=1)
for line in sys.stdin:
    out.write(line if line.endswith("\n") else line + "\n")
'''


class ExaBgp:
    """An ExaBGP process in a namespace, configured from ``Neighbor`` objects (or raw text).

    As a receiver, pass ``receiver=True``: every neighbor gets an API process that records the
    parsed JSON messages; ``rib(peer)`` gives ``{prefix: attributes}`` as ExaBGP decoded them.
    """

    #: eBGP: ExaBGP sends a configured as-path verbatim (its AS only when none is configured)
    prepends_as_path = False

    def __init__(self, lab: Lab, ns: Namespace, neighbors: Sequence[Neighbor] = (), receiver: bool = False,
                 name: str = "exabgp", listen: str | None = None, port: int = 179,
                 config_text: str | None = None, validate: bool = True):
        self.exabgp = venv_tool("exabgp")
        self.lab, self.ns, self.name = lab, ns, name
        self.neighbors = list(neighbors)
        self.receiver = receiver
        self.listen, self.port = listen, port
        self.raw_config = config_text
        self.validate = validate  # `exabgp validate` first (off for huge configs: it parses them all)
        self.conf = lab.path(f"{name}.conf")
        self.events = lab.path(f"{name}.events.jsonl")
        self.script = lab.path(f"{name}-receiver.py")
        self.proc = None

    def config_text(self) -> str:
        if self.raw_config is not None:
            return self.raw_config
        processes = []
        neighbors = self.neighbors
        if self.receiver:
            self.script.write_text(_RECEIVER)
            processes.append(Process("netlab-recv", f"{sys.executable} {self.script} {self.events}"))
            for n in neighbors:
                n.api_processes = ("netlab-recv",)
                n.api_receive = True
        return render_config(neighbors, processes)

    def env(self) -> dict[str, str]:
        e = {
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_log_destination": "stdout",
            "exabgp_log_short": "false",
            "exabgp_api_cli": "false",
            "exabgp_api_ack": "false",
            "exabgp_tcp_port": str(self.port),
        }
        if self.listen:
            e["exabgp_tcp_bind"] = self.listen
        return e

    def write_config(self) -> None:
        self.conf.write_text(self.config_text())
        if not self.validate:
            return
        cp = run([self.exabgp, "validate", "-n", "-r", str(self.conf)], check=False,
                 env={**os.environ, **self.env()})
        if cp.returncode != 0:
            raise NetlabError(f"exabgp rejects {self.conf}:\n{cp.stdout}{cp.stderr}\n{self.conf.read_text()}")

    def start(self) -> ExaBgp:
        self.write_config()
        argv = [self.exabgp, "server", str(self.conf)]
        if self.proc is None:
            self.proc = self.lab.spawn(self.ns, argv, name=self.name, env=self.env())
        else:
            self.proc.start()
        return self

    def reload(self, neighbors: Sequence[Neighbor] | None = None, config_text: str | None = None) -> None:
        """Rewrite the config and send SIGUSR1 (ExaBGP's reload)."""
        if neighbors is not None:
            self.neighbors = list(neighbors)
        if config_text is not None:
            self.raw_config = config_text
        self.write_config()
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def ensure_alive(self) -> None:
        if self.proc is None:
            raise NetlabError(f"{self.name} not started")
        self.proc.ensure_alive()

    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def log_tail(self, lines: int = 80) -> str:
        return self.proc.log_tail(lines) if self.proc else f"<{self.name} not started>"

    # -- receiver view -----------------------------------------------------------------------
    def messages(self) -> list[dict]:
        out = []
        try:
            text = self.events.read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line still being written
        return out

    def state(self, peer: str) -> str | None:
        """Last neighbor state ExaBGP reported for ``peer`` ("up", "down", "connected", ...)."""
        st = None
        for m in self.messages():
            n = m.get("neighbor", {})
            if m.get("type") == "state" and n.get("address", {}).get("peer") == peer:
                st = n.get("state")
        return st

    def wait_established(self, peer: str, timeout: float = 20) -> None:
        def check():
            self.lab.check_alive()
            return self.state(peer) == "up"
        wait_until(check, timeout, f"ExaBGP session with {peer} up", describe=self.proc.log_tail)

    def rib(self, peer: str | None = None) -> dict[str, dict]:
        """Adj-RIB-In as ExaBGP decoded it, ``{prefix: route}`` in the common shape (see
        ``normalise_exabgp``; ExaBGP's own JSON attribute dict is under ``"raw"``).
        A session going down clears it; End-of-RIB markers are kept in ``eor(peer)``."""
        rib: dict[str, dict] = {}
        for m in self.messages():
            n = m.get("neighbor", {})
            if peer and n.get("address", {}).get("peer") != peer:
                continue
            if m.get("type") == "state" and n.get("state") in ("down", "connected"):
                rib.clear()
                continue
            if m.get("type") != "update":
                continue
            upd = n.get("message", {}).get("update", {})
            attrs = upd.get("attribute", {})
            for fam, by_nh in upd.get("announce", {}).items():
                for nh, nlris in by_nh.items():
                    for entry in nlris:
                        prefix = entry["nlri"] if isinstance(entry, dict) else entry
                        rib[prefix] = normalise_exabgp(prefix, fam, nh, attrs)
            for nlris in upd.get("withdraw", {}).values():
                for entry in nlris:
                    prefix = entry["nlri"] if isinstance(entry, dict) else entry
                    rib.pop(prefix, None)
        return rib

    def established(self, peer: str) -> bool:
        return self.state(peer) == "up"

    def rib_in_counts(self, peer: str) -> dict[str, int]:
        """Routes held from ``peer`` per family ({"ipv4 unicast": N}); needs ``receiver=True``."""
        counts: dict[str, int] = {}
        for r in self.rib(peer).values():
            counts[r["family"]] = counts.get(r["family"], 0) + 1
        return counts

    def eor(self, peer: str | None = None) -> list[str]:
        out = []
        for m in self.messages():
            n = m.get("neighbor", {})
            if peer and n.get("address", {}).get("peer") != peer:
                continue
            eor = n.get("message", {}).get("eor")
            if m.get("type") == "update" and eor:
                out.append(f"{eor.get('afi')} {eor.get('safi')}")
        return out

    def wait_rib(self, peer: str, prefixes: Sequence[str], timeout: float = 20) -> dict[str, dict]:
        want = set(prefixes)
        def check():
            self.lab.check_alive()
            rib = self.rib(peer)
            return rib if set(rib) == want else None

        return wait_until(check, timeout, f"ExaBGP to hold exactly {sorted(want)} from {peer}",
                          describe=lambda: f"holds: {sorted(self.rib(peer))}\n{self.proc.log_tail()}")


_ORIGINS = {"igp": "igp", "egp": "egp", "incomplete": "incomplete"}


def normalise_exabgp(prefix: str, family: str, next_hop: str, attrs: dict) -> dict:
    """ExaBGP 5 JSON attributes -> the common route shape used by all netlab peers:
    prefix, family, next_hop, origin, as_path (flat list), med, local_pref, communities [(a, b)],
    large_communities [(a, b, c)], ext_communities, raw."""
    as_path: list[int] = []
    ap = attrs.get("as-path")
    if isinstance(ap, dict):  # {"0": {"element": "as-sequence", "value": [..]}, ...}
        for k in sorted(ap, key=lambda x: int(x)):
            as_path.extend(ap[k].get("value", []))
    elif isinstance(ap, list):
        as_path = list(ap)
    return {
        "prefix": prefix,
        "family": family,
        "next_hop": next_hop,
        "origin": _ORIGINS.get(attrs.get("origin"), attrs.get("origin")),
        "as_path": as_path,
        "med": attrs.get("med"),
        "local_pref": attrs.get("local-preference"),
        "communities": [tuple(c) for c in attrs.get("community", [])],
        "large_communities": [tuple(c) for c in attrs.get("large-community", [])],
        "ext_communities": list(attrs.get("extended-community", [])),
        "raw": attrs,
    }
