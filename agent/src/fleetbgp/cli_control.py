"""The `fleetbgp` subcommands that talk to a running agent over its control socket:

    fleetbgp show status|neighbors|routes|health|processes|flows [--json]
    fleetbgp announce ROUTE...        fleetbgp withdraw ROUTE...
    fleetbgp flow announce NAME RULE... [--expires-after S]     fleetbgp flow withdraw NAME
    fleetbgp maintenance [on|off]     fleetbgp reload
    fleetbgp restart [--graceful]

Tables for people (aligned columns, like `birdc show protocols`), `--json` for scripts (the
control protocol's result, unchanged). Exit codes: 0 ok, 1 the agent refused (error reply), 2 usage,
3 the agent cannot be reached. cli.py registers these with `add_parsers()` and runs them with
`main()`; they import nothing heavy (no asyncio, no BGP code), so they start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from fleetbgp import cli_plan
from fleetbgp.control_client import DEFAULT_SOCKET, ControlClient, ControlError, ControlUnavailable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

COMMANDS = ("show", "announce", "withdraw", "maintenance", "reload", "restart", "flow")
SHOW_WHAT = ("status", "neighbors", "routes", "health", "processes", "flows")
DEFAULT_TIMEOUT = 30.0
RELOAD_TIMEOUT = 300.0


def default_socket() -> str:
    return os.environ.get("FLEETBGP_CONTROL_SOCKET") or DEFAULT_SOCKET


# -- argument parsing ------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
    p.add_argument("--socket", metavar="PATH", default=None,
                   help=f"the agent's control socket (default: $FLEETBGP_CONTROL_SOCKET or {DEFAULT_SOCKET})")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                   help=f"give up waiting for the agent after this long (default: {DEFAULT_TIMEOUT:g})")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print the agent's answer as JSON")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommands to cli.py's subparsers."""
    p = sub.add_parser("show", help="show the running agent's state: status, neighbors, routes, health, "
                                    "processes, flows")
    p.add_argument("what", choices=SHOW_WHAT, metavar="{" + ",".join(SHOW_WHAT) + "}")
    p.add_argument("neighbors", nargs="*", metavar="NEIGHBOR",
                   help="only these neighbors (show neighbors, show routes)")
    p.add_argument("--neighbor", action="append", dest="neighbor_opt", metavar="ADDRESS",
                   help="only this neighbor (repeatable)")
    p.add_argument("--family", metavar="FAMILY", help="show routes: 'ipv4', 'ipv6', 'ipv4 unicast', ...")
    p.add_argument("--prefix", metavar="PREFIX", help="show routes: this prefix only")
    p.add_argument("--longer", action="store_true",
                   help="show routes: every route inside --prefix, not only the prefix itself")
    p.add_argument("--owner", metavar="OWNER",
                   help="show routes: only routes of this owner (config, process:NAME, health:NAME, "
                        "control:NAME)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="show routes: at most N routes (default 1000; 0: all)")
    p.add_argument("--received", action="store_true",
                   help="show routes: what the neighbors sent us (adj-rib-in) instead of what we send")
    _common(p)

    examples = {"announce": "route 100.10.0.100/32 next-hop self med 100",
                "withdraw": "route 100.10.0.100/32"}
    for verb, example in examples.items():
        p = sub.add_parser(verb, help=f"{verb} a route at runtime, e.g. `fleetbgp {verb} {example}`")
        p.add_argument("route", nargs="*", metavar="ROUTE",
                       help="the route in ExaBGP syntax, 'route' keyword optional")
        p.add_argument("--neighbor", action="append", metavar="ADDRESS",
                       help="only to this neighbor (repeatable; default: every neighbor)")
        p.add_argument("--owner", default=None, metavar="NAME",
                       help="tag the route with this owner (default: cli, stored as control:cli)")
        if verb == "withdraw":
            p.add_argument("--all", action="store_true", help="withdraw every route of --owner")
        _common(p)

    p = sub.add_parser("flow", help="announce or withdraw a FlowSpec rule by name, e.g. `fleetbgp flow "
                                    "announce web-syn destination 192.0.2.10/32 destination-port =80 "
                                    "protocol =tcp discard`")
    p.add_argument("verb", choices=("announce", "withdraw"))
    p.add_argument("name", metavar="NAME", help="the rule's name ([A-Za-z0-9_.:-], up to 64)")
    p.add_argument("rule", nargs="*", metavar="RULE",
                   help="announce: the rule in ExaBGP syntax, one-line (destination 192.0.2.0/24 "
                        "destination-port =80 discard) or '{ match { ... } then { ... } }'")
    p.add_argument("--family", choices=("ipv4", "ipv6"), default=None,
                   help="default: from the destination/source prefix, else ipv4")
    p.add_argument("--neighbor", action="append", metavar="ADDRESS",
                   help="only to this neighbor (repeatable; default: every neighbor with the family)")
    p.add_argument("--expires-after", type=float, default=None, metavar="SECONDS",
                   help="the agent withdraws the rule itself after this long")
    p.add_argument("--owner", default=None, metavar="NAME",
                   help="tag the rule with this owner (default: cli, stored as control:cli)")
    _common(p)

    p = sub.add_parser("maintenance", help="drain (on) or restore (off) every announcement; "
                                           "no argument: show the current state")
    p.add_argument("state", nargs="?", choices=("on", "off"))
    _common(p)

    p = sub.add_parser("reload", help="re-read the config file (as SIGHUP does) and report the outcome")
    p.add_argument("--dry-run", action="store_true",
                   help="only check the file and print what a reload would do (sessions restarted, "
                        "routes announced, withdrawn and changed, processes and checks changed)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="with --dry-run: plan this candidate file instead of the agent's config file "
                        "(against the running agent; with no agent running, against nothing)")
    p.add_argument("--env-file", metavar="ENVFILE", default=None,
                   help="with --config: the KEY=VALUE file its env['NAME'] secrets come from (as "
                        "`fleetbgp validate --env-file`)")
    _common(p)

    p = sub.add_parser("restart", help="stop the agent and let systemd start it again at once "
                                       "(exit status 75); --graceful keeps the routers' routes")
    p.add_argument("--graceful", action="store_true",
                   help="graceful restart (RFC 4724/8538): sessions with graceful-restart end without "
                        "the Cease that would end it, so routers keep our routes until we are back")
    _common(p)


# -- running ----------------------------------------------------------------------------------------


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    path = args.socket or default_socket()
    timeout = args.timeout or DEFAULT_TIMEOUT
    try:
        cmd, cmd_args, render = _request(args)
    except ValueError as exc:
        print(f"fleetbgp {args.command}: {exc}", file=err)
        return EXIT_USAGE
    except cli_plan.CandidateError as exc:
        # A bad candidate file: its errors, with file and line, whether an agent runs or not.
        print(f"fleetbgp reload: the candidate config is invalid:\n{exc}", file=err)
        if getattr(args, "json", False):
            _print_json({"error": {"code": "invalid_config", "message": "the candidate config is invalid",
                                   "details": exc.lines}}, out)
        return EXIT_ERROR
    if args.command == "reload" and args.timeout is None:
        timeout = RELOAD_TIMEOUT
    try:
        with ControlClient(path, timeout=timeout) as client:
            result = client.call_args(cmd, cmd_args)
    except ControlUnavailable as exc:
        if "config" in cmd_args and exc.reason.startswith(("no such socket", "connection refused")):
            result = cli_plan.plan_without_agent(cmd_args["config"])
            if getattr(args, "json", False):
                _print_json({**result, "text": render(result)}, out)
            else:
                out.write(render(result))
            return EXIT_OK
        print(f"fleetbgp: {exc.message}\n"
              "Is the agent running? Check `systemctl status fleetbgp`, "
              "or give the socket with --socket PATH.", file=err)
        if getattr(args, "json", False):
            _print_json({"error": {"code": exc.code, "message": exc.message}}, out)
        return EXIT_UNREACHABLE
    except ControlError as exc:
        if exc.code in ("timeout", "connection", "protocol"):
            print(f"fleetbgp: {exc.message}", file=err)
            return EXIT_UNREACHABLE
        print(f"fleetbgp {args.command}: {exc.message}", file=err)
        if isinstance(exc.details, list):
            for line in exc.details:
                print(f"  {line}", file=err)
        if getattr(args, "json", False):
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.details is not None:
                error["details"] = exc.details
            _print_json({"error": error}, out)
        return EXIT_ERROR
    if getattr(args, "json", False):
        if render is cli_plan.render_plan and isinstance(result, dict):
            # The plan for people too: the collection prints it, a script need not render it again.
            result = {**result, "text": render(result)}
        _print_json(result, out)
    else:
        out.write(render(result))
    return EXIT_OK


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any], Callable[[Any], str]]:
    """(command, arguments, how to render the result as text)."""
    if args.command == "show":
        neighbors = list(args.neighbors or []) + list(args.neighbor_opt or [])
        req: dict[str, Any] = {}
        if args.what in ("neighbors", "routes") and neighbors:
            req["neighbor"] = neighbors
        elif neighbors:
            raise ValueError(f"show {args.what} takes no neighbor")
        route_opts = {"family": args.family, "prefix": args.prefix, "owner": args.owner,
                      "limit": args.limit, "received": True if args.received else None}
        if args.what == "routes":
            req.update({k: v for k, v in route_opts.items() if v is not None})
            if args.longer:
                if args.prefix is None:
                    raise ValueError("--longer needs --prefix")
                req["match"] = "longer"
        elif any(v is not None for v in route_opts.values()) or args.longer:
            raise ValueError("--family, --prefix, --longer, --owner, --limit and --received are for "
                             "'show routes'")
        return args.what, req, _RENDER[args.what]
    if args.command in ("announce", "withdraw"):
        req = {}
        if args.route:
            req["route"] = " ".join(args.route)
        if getattr(args, "all", False):
            if args.route:
                raise ValueError("give either --all or a route")
            req["all"] = True
        elif not args.route:
            raise ValueError("which route? e.g. route 100.10.0.100/32 next-hop self med 100")
        if args.neighbor:
            req["neighbors"] = list(args.neighbor)
        if args.owner:
            req["owner"] = args.owner
        verb = args.command
        return verb, req, lambda r: _render_change(verb, r)
    if args.command == "flow":
        return _flow_request(args)
    if args.command == "maintenance":
        return "maintenance", ({"state": args.state} if args.state else {}), _render_maintenance
    if args.command == "reload":
        if args.env_file and not args.config:
            raise ValueError("--env-file goes with --config FILE")
        if args.config and not args.dry_run:
            raise ValueError("--config plans a candidate file: give --dry-run too (to apply a file, "
                             "install it as the agent's config file and reload)")
        if args.config:
            candidate = cli_plan.read_candidate(args.config, args.env_file)
            return "reload", {"dry_run": True, "config": candidate}, cli_plan.render_plan
        if args.dry_run:
            return "reload", {"dry_run": True}, cli_plan.render_plan
        return "reload", {}, _render_reload
    if args.command == "restart":
        return "restart", ({"graceful": True} if args.graceful else {}), _render_restart
    raise ValueError(f"unknown command {args.command!r}")


def _flow_request(args: argparse.Namespace) -> tuple[str, dict[str, Any], Callable[[Any], str]]:
    if args.verb == "withdraw":
        if args.rule or args.family or args.neighbor or args.expires_after is not None:
            raise ValueError("flow withdraw takes only the rule's name")
        return "flow_withdraw", {"name": args.name}, _render_flow_withdraw
    if not args.rule:
        raise ValueError("which rule? e.g. fleetbgp flow announce NAME destination 192.0.2.0/24 "
                         "destination-port =80 discard")
    # Imported here: the other subcommands stay free of the parser.
    from fleetbgp.api.commands import CommandError, parse_flow_rule
    from fleetbgp.config.lexer import tokenize_line

    try:
        match, then = parse_flow_rule(tokenize_line(" ".join(args.rule)))
    except CommandError as exc:
        raise ValueError(exc.message) from None
    req: dict[str, Any] = {"name": args.name, "match": match, "then": then}
    if args.family:
        req["family"] = args.family
    if args.neighbor:
        req["neighbors"] = list(args.neighbor)
    if args.expires_after is not None:
        req["expires_after"] = args.expires_after
    if args.owner:
        req["owner"] = args.owner
    return "flow_announce", req, _render_flow_announce


def _render_flow_announce(r: dict[str, Any]) -> str:
    rule = r.get("rule") or {}
    head = "announced" if r.get("changed") else "unchanged (already active)"
    text = f"{head}: {rule.get('text')}\n"
    sent = rule.get("announced_to") or []
    text += f"announced to: {', '.join(sent) if sent else 'no established session with the family yet'}\n"
    if rule.get("expires_at"):
        text += f"expires at: {fmt_time(rule['expires_at'])}\n"
    return text


def _render_flow_withdraw(r: dict[str, Any]) -> str:
    return "withdrawn\n" if r.get("changed") else "no such rule: nothing withdrawn\n"


def render_flows(r: Any) -> str:
    rules = r if isinstance(r, list) else []
    if not rules:
        return "no FlowSpec rules\n"
    now = time.time()
    rows = []
    for f in rules:
        expires = f.get("expires_at")
        rows.append((f.get("name"), f.get("family"), f.get("owner"),
                     f"in {fmt_duration(expires - now)}" if expires else "-",
                     ", ".join(f.get("announced_to") or []) or "-", _one_line(f.get("text", ""), 100)))
    return table(("Name", "Family", "Owner", "Expires", "Announced to", "Rule"), rows)


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


# -- text output ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; trailing blanks trimmed."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def fmt_time(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{s:02d}s"
    return f"{s}s"


def _fam_counts(counts: dict[str, int] | None) -> str:
    if not counts:
        return "0"
    if len(counts) == 1:
        return str(next(iter(counts.values())))
    nonzero = {k: v for k, v in counts.items() if v}
    if not nonzero:
        return "0"
    return " ".join(f"{k.replace(' unicast', '')}:{v}" for k, v in nonzero.items())


def render_status(r: dict[str, Any]) -> str:
    last = r.get("last_reload") or {}
    if last.get("result"):
        errors = last.get("errors") or []
        reload_text = f"{last['result']} at {fmt_time(last.get('time'))}"
        if errors:
            reload_text += f" ({len(errors)} error{'s' if len(errors) != 1 else ''})"
    else:
        reload_text = "none since start"
    counts = r.get("reloads") or {}
    maint = "off"
    if r.get("maintenance"):
        maint = f"on ({r.get('maintenance_mode') or 'drain'})"
    rows = [
        ("version", f"fleetbgp {r.get('version', '?')}, pid {r.get('pid', '?')}"),
        ("up", f"{fmt_duration(r.get('uptime'))} (since {fmt_time(r.get('started_at'))})"),
        ("config", r.get("config_path", "-")),
        ("config sha256", r.get("config_sha256") or "-"),
        ("config loaded", fmt_time(r.get("config_loaded_at"))),
        ("last reload", reload_text),
        ("reloads", f"{counts.get('success', 0)} succeeded, {counts.get('failure', 0)} failed"),
        ("neighbors", f"{r.get('neighbors', '?')} configured, {r.get('established', '?')} established"),
        ("maintenance", maint),
    ]
    flows = r.get("flows")
    if isinstance(flows, dict):
        rows.append(("flowspec rules", f"{flows.get('rules', 0)} ({flows.get('rules_control', 0)} control, "
                                       f"{flows.get('rules_config', 0)} config, "
                                       f"{flows.get('rules_process', 0)} API), "
                                       f"{flows.get('expired', 0)} expired since start"))
    bfd = r.get("bfd")
    if isinstance(bfd, dict):
        text = (f"{bfd.get('sessions', 0)} session(s), {bfd.get('up', 0)} up, {bfd.get('holding_bgp', 0)} "
                f"holding BGP down; listening on {', '.join(bfd.get('listening') or []) or 'nothing'}")
        rows.append(("bfd", text + "".join(f"; {e}" for e in bfd.get("errors") or [])))
    if r.get("control_socket"):
        rows.append(("control socket", r["control_socket"]))
    width = max(len(k) for k, _value in rows)
    return "".join(f"{k.ljust(width)}  {v}\n" for k, v in rows)


def render_neighbors(r: dict[str, Any]) -> str:
    rows = []
    bfd_lines = []
    for n in r.get("neighbors", []):
        if n.get("bfd"):
            bfd_lines.append(bfd_line(n.get("address"), n["bfd"]))
        info = ""
        if n.get("maintenance"):
            info = f"maintenance ({n['maintenance']})"
        gr = n.get("graceful_restart") or {}
        if gr.get("negotiated"):
            # graceful restart on this session; +N: RFC 8538 (a Cease keeps it, Hard Reset ends it)
            info = (info + "; " if info else "") + ("GR+N" if gr.get("notification") else "GR")
        if n.get("state") != "Established" and n.get("last_error"):
            info = (info + "; " if info else "") + str(n["last_error"])
        msgs = n.get("messages") or {}
        prefixes = n.get("prefixes") or {}
        rows.append((n.get("address"), n.get("peer_as"), n.get("local_as"), n.get("state"),
                     fmt_time(n.get("established_since")) if n.get("established_since") else "-",
                     fmt_duration(n.get("uptime")) if n.get("uptime") is not None else "-",
                     n.get("hold_time"), f"{msgs.get('received', 0)}/{msgs.get('sent', 0)}",
                     _fam_counts(prefixes.get("sent")), _fam_counts(prefixes.get("received")),
                     n.get("flaps", 0), info))
    if not rows:
        return "no neighbors configured\n"
    text = table(("Neighbor", "Peer AS", "Local AS", "State", "Since", "Uptime", "Hold",
                  "Msgs in/out", "Sent", "Received", "Flaps", "Info"), rows)
    return text + "".join(bfd_lines)


def bfd_line(address: object, b: dict[str, Any]) -> str:
    """One line per neighbor with BFD: state, the negotiated intervals, the peer's state, and
    whether it holds BGP down (docs/agent/bfd.md)."""
    state = b.get("state")
    text = f"BFD {address}: {state}"
    if state == "Up":
        text += f" since {fmt_time(b['up_since'])}" if b.get("up_since") else ""
    text += (f", tx {b.get('tx_interval_ms')} ms, detect {b.get('detect_time_ms')} ms"
             f" (remote {b.get('remote_state')}, x{b.get('remote_multiplier')})")
    if b.get("auth"):
        text += f", auth {b['auth']}"
    if state != "Up" and b.get("last_down_reason"):
        text += f"; last down: {b['last_down_reason']}"
    if b.get("holding_bgp"):
        text += "; BGP held down until BFD is up"
    return text + "\n"


def render_routes(r: dict[str, Any]) -> str:
    rows = []
    for e in r.get("routes", []):
        as_path = " ".join("{" + ",".join(map(str, a)) + "}" if isinstance(a, list) else str(a)
                           for a in e.get("as_path", []))
        if "flow" in e:
            flow = e["flow"]
            rows.append((e.get("neighbor"), e.get("family", ""), flow.get("text") or flow.get("error"),
                         e.get("next_hop") or "-", "-", "-", "-",
                         " ".join(e.get("communities", [])) or "-", e.get("owner", "-")))
            continue
        rows.append((e.get("neighbor"), e.get("family", "").replace(" unicast", ""), e.get("prefix"),
                     e.get("next_hop") or "-", _dash(e.get("med")), _dash(e.get("local_preference")),
                     as_path or "-", " ".join(e.get("communities", []) + e.get("large_communities", [])
                                              + e.get("extended_communities", [])) or "-",
                     e.get("owner", "-")))
    count, returned = r.get("count", len(rows)), r.get("returned", len(rows))
    text = table(("Neighbor", "Family", "Prefix", "Next hop", "MED", "LocPref", "AS path",
                  "Communities", "Owner"), rows) if rows else ""
    noun = "route" if count == 1 else "routes"
    if r.get("truncated"):
        text += f"{returned} of {count} {noun} shown (--limit N for more, --limit 0 for all)\n"
    else:
        text += f"{count} {noun}\n"
    return text


def render_health(r: dict[str, Any]) -> str:
    checks = r.get("checks", [])
    if not checks:
        return "no health checks configured\n"
    rows = []
    now = time.time()
    for c in checks:
        since = c.get("since")
        last = c.get("last_check")
        ok, fail = c.get("consecutive_ok"), c.get("consecutive_fail")
        streak = f"{ok} ok" if ok else f"{fail} failed" if fail else "-"
        rows.append((c.get("name"), c.get("state"), fmt_time(since) if since else "-",
                     fmt_duration(now - since) if since else "-", _announced(c), streak,
                     _dash(c.get("checks")), _dash(c.get("transitions")),
                     f"{fmt_duration(now - last)} ago" if last else "-",
                     _one_line(c.get("last_result") or "")))
    return table(("Check", "State", "Since", "For", "Announced", "Streak", "Checks", "Changes",
                  "Last check", "Last result"), rows)


def _announced(check: dict[str, Any]) -> str:
    """Each IP with the MED it is announced with, or 'withdrawn'."""
    ips = check.get("ips") or check.get("ip") or []
    if isinstance(ips, str):
        ips = [ips]
    announced = check.get("announced") or {}
    parts = []
    for ip in ips:
        if ip in announced:
            med = announced[ip]
            parts.append(f"{ip} (MED {med})" if med is not None else ip)
        else:
            parts.append(f"{ip} (withdrawn)")
    return ", ".join(parts) or "-"


def render_processes(r: dict[str, Any]) -> str:
    procs = r.get("processes", [])
    if not procs:
        return "no API processes configured\n"
    rows = [(p.get("name"), p.get("state", "-"), _dash(p.get("pid")), _dash(p.get("restarts")),
             _one_line(str(p.get("run", p.get("command", ""))))) for p in procs]
    return table(("Process", "State", "PID", "Restarts", "Command"), rows)


def _render_change(verb: str, r: dict[str, Any]) -> str:
    changed = r.get("changed", 0)
    routes = r.get("routes")
    what = "every route" if routes is None else f"{routes} route{'' if routes == 1 else 's'}"
    done = "announced" if verb == "announce" else "withdrew"
    where = "to" if verb == "announce" else "from"
    if changed:
        text = f"{done} {what} (owner {r.get('owner')}) {where} {changed} " \
               f"neighbor{'' if changed == 1 else 's'}\n"
    else:
        text = f"{done} {what} (owner {r.get('owner')}): nothing changed at any neighbor\n"
    if verb == "announce" and r.get("maintenance"):
        text += "note: maintenance is on; the route goes out when it is turned off\n"
    return text


def _render_maintenance(r: dict[str, Any]) -> str:
    if r.get("maintenance"):
        how = "withdrawing every announcement" if r.get("mode") == "withdraw" else \
            f"announcing everything with MED {r.get('metric')}"
        return f"maintenance on ({how}){'' if r.get('changed', True) else ', already'}\n"
    return f"maintenance off{'' if r.get('changed', True) else ' (already)'}\n"


def _render_reload(r: dict[str, Any]) -> str:
    return f"reloaded: {r.get('summary') or 'ok'}\n"


def _render_restart(r: dict[str, Any]) -> str:
    kind = "graceful restart" if r.get("graceful") else "restart"
    lines = [f"{kind}: the agent stops now and exits with status {r.get('exit_status')} "
             "(systemd starts it again)", f"  {r.get('message', '')}"]
    if r.get("graceful_neighbors"):
        lines.append(f"  routes kept by: {', '.join(r['graceful_neighbors'])}")
    if r.get("cease_neighbors"):
        lines.append(f"  Cease (routes dropped) to: {', '.join(r['cease_neighbors'])}")
    return "\n".join(lines) + "\n"


def _dash(value: Any) -> Any:
    return "-" if value is None else value


def _one_line(text: Any, limit: int = 60) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


_RENDER: dict[str, Callable[[Any], str]] = {
    "status": render_status, "neighbors": render_neighbors, "routes": render_routes,
    "health": render_health, "processes": render_processes, "flows": render_flows,
}
