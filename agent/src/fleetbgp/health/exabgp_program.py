"""`fleetbgp healthcheck`: ExaBGP's healthcheck program, as an API process of the agent.

An ExaBGP user changes only the program name in their `process` line:

    process watch-web { run fleetbgp healthcheck --cmd 'curl -sf http://127.0.0.1/' --ip 100.10.0.100/32; }

It accepts ExaBGP's options (and its `--config FILE` of `name = value` lines), runs the check, and
writes `announce route ...` / `withdraw route ...` lines on stdout when the state changes (not
on every check, as ExaBGP does without --debounce). Acks (`done`/`error`) are read from stdin
unless --no-ack; an ack that does not come within --ack-timeout is not waited for again, so an
agent whose acks are off never blocks the program.

Differences from ExaBGP's, on purpose: no addresses are added to or removed from the loopback
(--ip-setup and friends are accepted and ignored, with a warning naming any --ip address that is
not configured on this host); logs go to stderr (the agent logs a program's stderr) and to syslog
only with --syslog-facility; --path-id is ignored (add-path is not supported).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import logging.handlers
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from fleetbgp import __version__
from fleetbgp.config.lexer import tokenize_line
from fleetbgp.config.limits import MAX_METRIC, MAX_ROUTES, metric_overflow
from fleetbgp.grammar.errors import RouteError
from fleetbgp.grammar.route import parse_attributes
from fleetbgp.literals import ip_address, leading_zero, shown
from fleetbgp.wire.nlri import IPV4_UNICAST

from .checks import run_command
from .engine import Engine, Settings, State, Transition, advert_routes

log = logging.getLogger("healthcheck")

HOOK_TIMEOUT = 60.0
MAX_SECONDS = 365 * 86400.0  # the largest interval or timeout taken (0 is the smallest)
DISABLE_POLL = 0.5
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _ip_network(text: str) -> IpNetwork:
    if "%" in text:  # ipaddress keeps a zone (even 'x y') in the network it prints: no route has one
        raise argparse.ArgumentTypeError(f"{shown(text)}: a route prefix has no zone (%...): leave it out")
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(leading_zero(text) or str(exc)) from None


def _ip_address(text: str) -> str:
    try:
        return str(ip_address(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _neighbor(text: str) -> str:
    return "*" if text.strip() == "*" else _ip_address(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds cannot be negative")
    # float() also takes nan, inf and 1e400 (inf): a sleep or timeout of those never behaves.
    if not math.isfinite(value) or value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds, 0..{MAX_SECONDS:g}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def _u32(text: str) -> int:
    """A MED or an increase of it: 32 bits on the wire, so the agent refuses anything larger."""
    value = _count(text)
    if value > MAX_METRIC:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number 0..{MAX_METRIC}")
    return value


def _local_preference(text: str) -> int:
    """LOCAL_PREF, 32 bits; -1 (ExaBGP's default) means none is sent."""
    if text.strip() == "-1":
        return -1
    try:
        return _u32(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number 0..{MAX_METRIC} "
                                         "(or -1: not sent)") from None


def build_parser() -> argparse.ArgumentParser:
    """ExaBGP's healthcheck options (same names, short forms and defaults), plus --ack-timeout."""
    parser = argparse.ArgumentParser(
        prog="fleetbgp healthcheck",
        description="Announce service IPs while a check succeeds: ExaBGP's healthcheck, as a "
                    "fleetbgp API program. A --config FILE holds the same options as "
                    "`name = value` lines (`debug` alone for a flag).")
    me = parser.add_mutually_exclusive_group()
    me.add_argument("--silent", "-s", action="store_true", help="don't log to the console (stderr)")
    me.add_argument("--syslog-facility", "-sF", metavar="FACILITY", nargs="?", const="daemon",
                    default=None, help="also log to syslog with FACILITY (daemon when not given)")
    me.add_argument("--no-syslog", action="store_true", help="don't log to syslog (the default here)")
    parser.add_argument("--debug", "-d", action="store_true", help="log every check")
    parser.add_argument("--no-ack", "-a", action="store_true",
                        help="don't wait for the agent's done/error acks (its acks are off)")
    parser.add_argument("--ack-timeout", metavar="N", type=_seconds, default=5.0,
                        help="fleetbgp: stop waiting for acks when one takes longer than N seconds "
                             "(default 5)")
    parser.add_argument("--sudo", action="store_true", help="ignored (no addresses are set up)")
    parser.add_argument("--name", "-n", metavar="NAME", help="name of this health check (for logs)")
    parser.add_argument("--config", "-F", metavar="FILE",
                        help="read options from FILE (name = value lines)")
    parser.add_argument("--pid", "-p", metavar="FILE", help="write the PID to FILE")
    parser.add_argument("--user", metavar="USER", help="run as USER")
    parser.add_argument("--group", metavar="GROUP", help="run as GROUP")

    g = parser.add_argument_group("checking healthiness")
    g.add_argument("--interval", "-i", metavar="N", type=_seconds, default=5.0,
                   help="seconds between checks (0: exit after the first announcement); default 5")
    g.add_argument("--fast-interval", "-f", metavar="N", type=_seconds, default=1.0, dest="fast",
                   help="seconds between checks while the state is about to change; default 1")
    g.add_argument("--timeout", "-t", metavar="N", type=_seconds, default=5.0,
                   help="seconds the check command may take (0: no limit); default 5")
    g.add_argument("--rise", metavar="N", type=_count, default=3, help="successes before UP; default 3")
    g.add_argument("--fall", metavar="N", type=_count, default=3, help="failures before DOWN; default 3")
    g.add_argument("--disable", metavar="FILE", help="while FILE exists, the service is DISABLED")
    g.add_argument("--command", "--cmd", "-c", metavar="CMD",
                   help="the check, run with /bin/sh (none: always ok)")

    g = parser.add_argument_group("advertising options")
    g.add_argument("--next-hop", "-N", metavar="IP", type=_ip_address, help="next hop (default: self)")
    g.add_argument("--ip", metavar="IP", type=_ip_network, dest="ips", action="append", default=[],
                   help="announce this address or network (repeat for more); default: the loopback's")
    g.add_argument("--ip-ifname", metavar="IP%IFNAME", dest="ip_ifnames", action="append", default=[],
                   help="ignored (no addresses are set up)")
    g.add_argument("--local-preference", metavar="P", type=_local_preference, default=-1,
                   help="LOCAL_PREF (iBGP)")
    g.add_argument("--deaggregate-networks", action="store_true",
                   help=f"announce each address of the --ip networks as a host route (at most "
                        f"{MAX_ROUTES} routes)")
    g.add_argument("--no-ip-setup", action="store_false", dest="ip_setup",
                   help="accepted for compatibility: addresses are never set up")
    g.add_argument("--dynamic-ip-setup", action="store_true", dest="ip_dynamic",
                   help="ignored (no addresses are set up)")
    g.add_argument("--label", default=None, help="without --ip: use the loopback addresses with this label")
    g.add_argument("--label-exact-match", action="store_true", help="--label must match exactly")
    g.add_argument("--start-ip", metavar="N", type=int, default=0, help="index of the first IP of the list")
    g.add_argument("--up-metric", metavar="M", type=_u32, default=100, help="MED when UP; default 100")
    g.add_argument("--down-metric", metavar="M", type=_u32, default=1000,
                   help="MED when DOWN; default 1000")
    g.add_argument("--disabled-metric", metavar="M", type=_u32, default=500,
                   help="MED when DISABLED; default 500")
    g.add_argument("--increase", metavar="M", type=_u32, default=1,
                   help="each further IP gets M more MED; default 1")
    g.add_argument("--community", metavar="COMMUNITY", help="communities (space separated)")
    g.add_argument("--extended-community", metavar="EXTENDEDCOMMUNITY", help="extended communities")
    g.add_argument("--large-community", metavar="LARGECOMMUNITY", help="large communities")
    g.add_argument("--disabled-community", metavar="DISABLEDCOMMUNITY",
                   help="communities when DOWN or DISABLED (instead of --community)")
    g.add_argument("--as-path", metavar="ASPATH", help="AS path (space separated)")
    g.add_argument("--up-as-path", metavar="ASPATH", help="AS path when UP")
    g.add_argument("--down-as-path", metavar="ASPATH", help="AS path when DOWN")
    g.add_argument("--disabled-as-path", metavar="ASPATH", help="AS path when DISABLED")
    g.add_argument("--withdraw-on-down", action="store_true",
                   help="withdraw when DOWN or DISABLED instead of announcing a worse MED")
    g.add_argument("--path-id", metavar="PATHID", type=int, help="ignored (add-path is not supported)")
    g.add_argument("--neighbor", metavar="NEIGHBOR", type=_neighbor, dest="neighbors", action="append",
                   help="announce to this neighbor only (repeat for more; * for all); default: all")
    g.add_argument("--debounce", action="store_true",
                   help="accepted: routes are only ever sent when the state changes")

    g = parser.add_argument_group("reporting")
    g.add_argument("--execute", metavar="CMD", action="append", help="run CMD on every state change")
    g.add_argument("--up-execute", metavar="CMD", action="append", help="run CMD when the service goes UP")
    g.add_argument("--down-execute", metavar="CMD", action="append", help="run CMD when it goes DOWN")
    g.add_argument("--disabled-execute", metavar="CMD", action="append", help="run CMD when DISABLED")
    parser.add_argument("--version", action="version", version=f"fleetbgp healthcheck {__version__}")
    return parser


def config_file_args(path: str) -> list[str]:
    """ExaBGP's config file: each line `name = value` (or `name` alone) is `--name value`;
    blank lines and lines starting with # are skipped."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    args: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        args.extend(part.strip() for part in f"--{text}".split("=", 1))
    return args


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    options = parser.parse_args(list(argv))
    if options.config is not None:
        try:
            extra = config_file_args(options.config)
        except OSError as exc:
            parser.error(f"--config {options.config}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            parser.error(f"--config {options.config}: not a UTF-8 text file")
        options = parser.parse_args([*extra, *argv])
    _validate(parser, options)
    return options


def _missing_values(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """`-N--` (an option glued to `--`) gets no value and no type check from argparse: an empty
    list where an address or a number belongs."""
    for action in parser._actions:
        value = getattr(options, action.dest, None)
        if action.option_strings and action.nargs is None and value == [] and action.default != []:
            parser.error(f"{'/'.join(action.option_strings)}: a value is missing")


def _validate(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """Route attributes are checked now (the agent would refuse each announcement later)."""
    _missing_values(parser, options)
    for opt, keyword in (("community", "community"), ("disabled_community", "community"),
                         ("large_community", "large-community"),
                         ("extended_community", "extended-community"),
                         ("as_path", "as-path"), ("up_as_path", "as-path"), ("down_as_path", "as-path"),
                         ("disabled_as_path", "as-path")):
        value = getattr(options, opt)
        if value is None:
            continue
        try:
            parse_attributes(tokenize_line(f"{keyword} [ {value} ]"), IPV4_UNICAST, require_next_hop=False)
        except RouteError as exc:
            parser.error(f"--{opt.replace('_', '-')} {value!r}: {exc.message}")
    if options.ips:  # without --ip, the loopback's addresses: checked once they are known (main)
        problem = route_problem(options, options.ips)
        if problem is not None:
            parser.error(problem)


def route_problem(options: argparse.Namespace, ips: Sequence[IpNetwork]) -> str | None:
    """Too many routes, a MED that overflows 32 bits on the last one, or a next hop of the wrong
    family: what is wrong, or None.
    Counted without building the routes (a deaggregated /8 would be 16 million objects); a
    --next-hop of the other family than an address (the loopback's too, without --ip)."""
    if options.next_hop is not None:
        version = ipaddress.ip_address(options.next_hop).version
        other = next((net for net in ips if net.version != version), None)
        if other is not None:
            where = "--ip" if options.ips else "the loopback's address"
            return f"--next-hop {options.next_hop} is IPv{version}, but {where} {other} is not"
    deaggregate = options.deaggregate_networks
    routes = sum(net.num_addresses for net in ips) if deaggregate else len(ips)
    if routes > MAX_ROUTES:
        if deaggregate:
            largest = max(ips, key=lambda net: net.num_addresses)
            return (f"--deaggregate-networks would announce {routes} routes (--ip {largest} alone is "
                    f"{largest.num_addresses}); a health check announces at most {MAX_ROUTES}")
        return f"--ip gives {routes} routes; a health check announces at most {MAX_ROUTES}"
    overflow = metric_overflow(options.up_metric, options.down_metric, options.disabled_metric,
                               options.increase, routes, options.withdraw_on_down)
    if overflow is not None:
        name, metric, last = overflow
        return (f"--{name} {metric} with --increase {options.increase} over {routes} routes gives the "
                f"last one a MED of {last}, more than {MAX_METRIC}")
    return None


# ------------------------------------------------------------------------------------------------
# addresses


def host_addresses(dev: str | None = None) -> list[tuple[str, IpInterface, str]]:
    """(interface, address/prefix, label) from `ip -o address show [dev DEV]`; [] if ip fails.
    The label is IPv4's `lo:NAME` (empty when there is none)."""
    argv = ["ip", "-o", "address", "show"] + (["dev", dev] if dev else [])
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in out.splitlines():
        # 1: lo    inet 100.10.0.100/32 scope global lo:web\       valid_lft forever ...
        words = line.replace("\\", " ").split()
        if len(words) < 4 or words[2] not in ("inet", "inet6"):
            continue
        try:
            iface = ipaddress.ip_interface(words[3])
        except ValueError:
            continue
        label = ""
        if "scope" in words:
            i = words.index("scope") + 2
            if i < len(words) and words[i].startswith(words[1].rstrip(":") + ":"):
                label = words[i]
        found.append((words[1].rstrip(":"), iface, label))
    return found


def loopback_ips(label: str | None, exact: bool) -> list[IpNetwork]:
    """ExaBGP's default when no --ip is given: the loopback's own (non-loopback) addresses,
    those whose label (lo:LABEL) matches when --label is given."""
    out: list[IpNetwork] = []
    for _dev, iface, lab in host_addresses("lo"):
        addr = iface.ip
        if addr.is_loopback:
            continue
        if label is not None:
            suffix = lab.partition(":")[2] if lab.startswith("lo:") else ""
            if not (suffix == label if exact else suffix.startswith(label)):
                continue
        out.append(ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}"))
    return out


def missing_addresses(ips: Sequence[IpNetwork]) -> list[IpNetwork]:
    present = {iface.ip for _dev, iface, _label in host_addresses()}
    if not present:
        return []  # cannot tell
    return [net for net in ips if net.num_addresses == 1 and net.network_address not in present]


# ------------------------------------------------------------------------------------------------
# output


class Announcer:
    """Writes the API lines and reads the acks."""

    def __init__(self, options: argparse.Namespace, out: TextIO, acks: AckReader | None) -> None:
        self.options = options
        self.out = out
        self.acks = acks
        self.ips = [str(ip) for ip in options.ips]
        self.next_hop = options.next_hop or "self"
        prefix = ""
        if options.neighbors and "*" not in options.neighbors:
            prefix = ", ".join(f"neighbor {n}" for n in options.neighbors) + " "
        self.prefix = prefix

    def line(self, ip: str, state: State, metric: int | None) -> str:
        o = self.options
        if metric is None:
            return f"{self.prefix}withdraw route {ip} next-hop {self.next_hop}"
        parts = [f"{self.prefix}announce route {ip} next-hop {self.next_hop} med {metric}"]
        if o.local_preference >= 0:
            parts.append(f"local-preference {o.local_preference}")
        community = o.community
        if state in (State.DOWN, State.DISABLED) and o.disabled_community:
            community = o.disabled_community
        if community:
            parts.append(f"community [ {community} ]")
        if o.extended_community:
            parts.append(f"extended-community [ {o.extended_community} ]")
        if o.large_community:
            parts.append(f"large-community [ {o.large_community} ]")
        as_path = {State.UP: o.up_as_path, State.DOWN: o.down_as_path,
                   State.DISABLED: o.disabled_as_path}.get(state) or o.as_path
        if as_path:
            parts.append(f"as-path [ {as_path} ]")
        return " ".join(parts)

    async def send(self, lines: Sequence[str]) -> None:
        for text in lines:
            log.debug("send: %s", text)
            self.out.write(text + "\n")
            self.out.flush()
            if self.acks is not None:
                await self.acks.wait(text)

    def lines_for(self, t: Transition, route_state: State | None) -> list[str]:
        if t.advert is None:
            return []
        state = route_state or t.advert.state
        return [self.line(ip, state, metric) for ip, metric in advert_routes(t.advert, self.ips)]


class Shutdown(Exception):
    """The agent answered `shutdown`."""


class AckReader:
    """Lines from stdin, read by a thread (stdin may be a pipe, a file or a terminal)."""

    def __init__(self, stream: TextIO, timeout: float) -> None:
        self.timeout = timeout
        self.enabled = True
        self.eof = False
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        thread = threading.Thread(target=self._read, args=(stream,), name="acks", daemon=True)
        thread.start()

    def _read(self, stream: TextIO) -> None:
        with contextlib.suppress(Exception):
            for line in stream:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, line)
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    @staticmethod
    def answer(line: str) -> str | None:
        text = line.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                return None
            value = data.get("answer") if isinstance(data, dict) else None
            return value if isinstance(value, str) else None
        return text if text in ("done", "error", "shutdown") else None

    def _handle(self, answer: str, sent: str) -> None:
        if answer == "error":
            log.error("the agent refused: %s (see its log for the reason)", sent)
        elif answer == "shutdown":
            raise Shutdown

    def drain(self) -> None:
        """Acks that came after we stopped waiting: look at them (a shutdown counts), drop them."""
        while not self.queue.empty():
            line = self.queue.get_nowait()
            if line is None:
                self.eof = True
                continue
            answer = self.answer(line)
            if answer is not None:
                self._handle(answer, "(an earlier line)")

    async def wait(self, sent: str) -> None:
        if not self.enabled or self.eof:
            self.drain()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                line = await asyncio.wait_for(self.queue.get(), left)
            except TimeoutError:
                self.enabled = False
                log.warning("no ack from the agent within %g s: not waiting for acks any more "
                            "(use --no-ack when the agent's acks are off)", self.timeout)
                return
            if line is None:
                self.eof = True
                log.debug("stdin closed: not waiting for acks")
                return
            answer = self.answer(line)
            if answer is None:
                continue  # an event from the agent, not an ack
            self._handle(answer, sent)
            return


# ------------------------------------------------------------------------------------------------
# the program


def settings_from(options: argparse.Namespace) -> Settings:
    return Settings(
        rise=options.rise, fall=options.fall, interval=options.interval, fast_interval=options.fast,
        up_metric=options.up_metric, down_metric=options.down_metric,
        disabled_metric=options.disabled_metric, increase=options.increase,
        withdraw_on_down=options.withdraw_on_down, execute=tuple(options.execute or ()),
        up_execute=tuple(options.up_execute or ()), down_execute=tuple(options.down_execute or ()),
        disabled_execute=tuple(options.disabled_execute or ()),
        extras=((State.UP, (options.community, options.up_as_path or options.as_path)),
                (State.DOWN, (options.disabled_community or options.community,
                              options.down_as_path or options.as_path)),
                (State.DISABLED, (options.disabled_community or options.community,
                                  options.disabled_as_path or options.as_path))))


class Program:
    def __init__(self, options: argparse.Namespace, announcer: Announcer) -> None:
        self.options = options
        self.announcer = announcer
        self.engine = Engine(settings_from(options), time.time())
        self.stopping = asyncio.Event()

    def disabled(self) -> bool:
        return self.options.disable is not None and os.path.exists(self.options.disable)

    async def check(self) -> tuple[bool, str]:
        command = self.options.command
        if command is None:
            return True, "no check command: always up"
        timeout = self.options.timeout or 365 * 86400.0
        log.debug("checking command %r", command)
        status, output = await run_command(command, timeout)
        if status is None:
            log.warning("timeout (%g s) while running the check command %r", self.options.timeout, command)
            return False, "timeout"
        if status != 0:
            log.warning("check command was unsuccessful: %s", status)
            if output:
                log.info("output of the check command: %s", output)
            return False, f"exit {status}"
        log.debug("check command was successful")
        return True, "exit 0"

    async def hooks(self, t: Transition) -> None:
        env = {"STATE": str(t.after)}
        for command in t.hooks:
            log.debug("transition to %s, execute %r", t.after, command)
            status, output = await run_command(command, HOOK_TIMEOUT, env)
            if status is None:
                log.error("%s hook %r killed after %g s", t.after, command, HOOK_TIMEOUT)
            elif status != 0:
                log.warning("%s hook %r exited %d%s", t.after, command, status,
                            f": {output}" if output else "")

    async def apply(self, t: Transition) -> None:
        if t.before is not t.after:
            log.info("%s -> %s", t.before, t.after)
        if t.hooks_first:
            await self.hooks(t)
        if t.advert is not None:
            log.info("send announces for %s state", t.after)
            await self.announcer.send(self.announcer.lines_for(t, self.engine.route_state))
        if not t.hooks_first:
            await self.hooks(t)

    async def sleep(self, delay: float) -> None:
        """Until the next check; early on stop or when the disable file comes or goes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        was = self.engine.disabled  # what the last iteration saw (the file may have changed since)
        while not self.stopping.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            step = min(left, DISABLE_POLL) if self.options.disable else left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), step)
            if self.options.disable and self.disabled() != was:
                return

    async def run(self) -> int:
        while not self.stopping.is_set():
            disabled = self.disabled()
            ok: bool | None = None
            text = "disabled"
            if not disabled:
                ok, text = await self.check()
            for t in self.engine.feed(ok, time.time(), disabled=disabled, text=text):
                await self.apply(t)
            if self.stopping.is_set():
                break
            state = self.engine.state
            if self.options.interval == 0 and state not in (State.RISING, State.FALLING):
                log.info("interval set to zero, exiting after the announcement")
                self.engine.end(time.time())
                return EXIT_OK
            await self.sleep(self.options.fast if state in (State.RISING, State.FALLING, State.INIT)
                             else self.options.interval)
        await self.exit()
        return EXIT_OK

    async def exit(self) -> None:
        """ExaBGP's EXIT: withdraw every IP."""
        self.engine.stop(time.time())
        a = self.announcer
        lines = [a.line(ip, State.EXIT, None) for ip in a.ips]
        log.info("exiting: withdrawing %d route(s)", len(lines))
        with contextlib.suppress(BrokenPipeError, OSError, Shutdown):
            # Acks are not waited for long: the agent may be stopping us.
            if a.acks is not None:
                a.acks.timeout = min(a.acks.timeout, 1.0)
            await a.send(lines)


def setup_logging(options: argparse.Namespace) -> None:
    log.setLevel(logging.DEBUG if options.debug else logging.INFO)
    log.handlers.clear()
    log.propagate = False
    tag = f"healthcheck-{options.name}" if options.name else "healthcheck"
    if not options.silent:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(levelname)s[{tag}] %(message)s"))
        log.addHandler(handler)
    if options.syslog_facility and not options.no_syslog:
        facility = logging.handlers.SysLogHandler.facility_names.get(options.syslog_facility.lower())
        if facility is None:
            log.warning("unknown syslog facility %r: not logging to syslog", options.syslog_facility)
            return
        try:
            sh = logging.handlers.SysLogHandler(address="/dev/log", facility=facility)
        except OSError as exc:
            log.warning("cannot log to syslog (/dev/log): %s", exc.strerror or exc)
            return
        sh.setFormatter(logging.Formatter(f"{tag}[{os.getpid()}]: %(message)s"))
        log.addHandler(sh)


def _drop_privileges(user: str | None, group: str | None) -> None:
    if group is not None:
        import grp

        gid = grp.getgrnam(group).gr_gid
        os.setresgid(gid, gid, gid)
    if user is not None:
        import pwd

        uid = pwd.getpwnam(user).pw_uid
        os.setresuid(uid, uid, uid)


def prepare_ips(options: argparse.Namespace) -> bool:
    """--ip (or the loopback's addresses), deaggregated and rotated as ExaBGP does. False: none;
    ValueError: too many routes, a MED over 32 bits, or a next hop of the other family."""
    ips: list[IpNetwork] = list(options.ips) or loopback_ips(options.label, options.label_exact_match)
    if not ips:
        return False
    problem = route_problem(options, ips)  # the loopback's addresses were not checked before
    if problem is not None:
        raise ValueError(problem)
    if options.deaggregate_networks:
        ips = [ipaddress.ip_network(addr) for net in ips for addr in net]
    if ips and options.start_ip:
        k = options.start_ip % len(ips)
        ips = ips[k:] + ips[:k]
    options.ips = ips
    return True


def _warn_ignored(options: argparse.Namespace) -> None:
    if options.path_id is not None:
        log.warning("--path-id is ignored: fleetbgp does not support add-path")
    if options.ip_ifnames or options.ip_dynamic or options.sudo:
        log.warning("--ip-ifname, --dynamic-ip-setup and --sudo are ignored: fleetbgp healthcheck does "
                    "not manage interface addresses")
    if options.ip_setup:
        for net in missing_addresses(options.ips):
            log.warning("%s is not configured on this host: ExaBGP's healthcheck would add it to the "
                        "loopback, fleetbgp healthcheck does not (configure it, or use --up-execute); "
                        "--no-ip-setup silences this", net)


async def _amain(options: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    use_acks = not options.no_ack and not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
    acks = AckReader(sys.stdin, options.ack_timeout) if use_acks else None
    program = Program(options, Announcer(options, sys.stdout, acks))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, program.stopping.set)
    try:
        return await program.run()
    except Shutdown:
        log.info("the agent is shutting down")
        return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        options = parse_args(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
    setup_logging(options)
    if options.pid:
        try:
            with open(options.pid, "w", encoding="ascii") as fh:
                fh.write(f"{os.getpid()}\n")
        except OSError as exc:
            log.error("cannot write the PID file %s: %s", options.pid, exc.strerror)
            return EXIT_ERROR
    try:
        have_ips = prepare_ips(options)
    except ValueError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    if not have_ips:
        log.error("no IP to announce: give --ip (the loopback has no address to use)")
        return EXIT_ERROR
    _warn_ignored(options)
    try:
        _drop_privileges(options.user, options.group)
    except (KeyError, OSError) as exc:
        log.error("cannot switch to user %s / group %s: %s", options.user, options.group, exc)
        return EXIT_ERROR
    log.debug("announcing %s; check: %s", " ".join(str(ip) for ip in options.ips),
              shlex.quote(options.command) if options.command else "none")
    try:
        return asyncio.run(_amain(options))
    except BrokenPipeError:
        # The agent closed our stdout: it is gone or stopping us. Nothing more to say to it.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK


def _entry(argv: Sequence[str] | None = None) -> Any:  # pragma: no cover - `python -m` helper
    raise SystemExit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    _entry()
