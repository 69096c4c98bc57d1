"""`fleetbgp reload --dry-run [--config FILE]`: the route plan, read and printed.

With --config the CLI reads the candidate file itself and sends its text to the running agent,
which plans it against what it runs now (the agent's user may not be allowed to read a file the
operator's tools wrote, e.g. an Ansible temp file). The file is parsed here first, so that a bad
file is reported with its name and line even when no agent runs. With no agent (no control socket,
or a stale one: a first deploy), the file is planned against nothing: every route is announced.

The text output is diff-like, per neighbor: `+` announced, `-` withdrawn, `~` an attribute
changed (old -> new). The JSON is the control reply (`plan` is ReloadPlan.as_dict()).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

NO_AGENT_NOTE = ("no agent is running (no control socket): planned against nothing, as a first "
                 "start would do; every route of the file and of its health checks is announced")


class CandidateError(Exception):
    """The candidate file cannot be planned: its lines are `FILE:LINE:COL: message`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def read_candidate(path: str, env_file: str | None = None) -> dict[str, Any]:
    """The `config` argument of the reload request: the file's name and text, checked, and the
    values of `env_file` (the secrets file the unit loads: `md5-password env['NAME']` reads it;
    the agent plans with them, as it would run after a restart)."""
    from fleetbgp.cli import read_env_file
    from fleetbgp.config import ConfigError, parse_text  # heavy: only for --config

    env: dict[str, str] = {}
    if env_file:
        try:
            env = read_env_file(env_file)
        except (OSError, ValueError) as exc:
            raise CandidateError([f"--env-file: {exc}"]) from None
        os.environ.update(env)  # this process only: the local check reads them like the agent
    name = os.path.abspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CandidateError([f"{name}: cannot read the config file: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CandidateError([f"{name}: the file is not valid UTF-8"]) from None
    try:
        parse_text(text, name)
    except ConfigError as exc:
        raise CandidateError(str(exc).splitlines()) from None
    out: dict[str, Any] = {"name": name, "text": text}
    if env:
        out["env"] = env
    return out


def plan_without_agent(candidate: dict[str, Any]) -> dict[str, Any]:
    """The reply a running agent with no neighbors, routes or checks would give: everything in the
    file is added, its health checks as if UP (the same planning code as the agent's)."""
    from fleetbgp.config import Config, parse_text
    from fleetbgp.health.runner import planned_check
    from fleetbgp.reload_plan import reconcile

    new = parse_text(candidate["text"], candidate["name"])
    checks = {name: planned_check(hc, None) for name, hc in new.healthchecks.items()}
    nothing = Config(neighbors=[], processes={}, listen=[], path="")
    plan = reconcile(nothing, new, {}, checks=checks, prefixes=True)
    return {"ok": True, "summary": plan.summary(), "errors": [], "plan": plan.as_dict(routes=True),
            "applied": False, "agent": "none", "note": NO_AGENT_NOTE,
            "config_sha256": hashlib.sha256(candidate["text"].encode()).hexdigest()}


def render_plan(r: dict[str, Any]) -> str:
    """One line per thing a reload would do, each neighbor's routes under it, then that nothing
    was done."""
    plan = r.get("plan") or {}
    lines: list[str] = []
    any_routes = False
    routes = {step.get("neighbor"): step for step in plan.get("routes", [])}
    for step in plan.get("neighbors", []):
        where, action = f"neighbor {step.get('neighbor')}", step.get("action")
        if action == "restart":
            lines.append(f"{where}: restart the session (changed: {', '.join(step.get('settings', []))})")
        elif action == "update":
            lines.append(f"{where}: announce or change {step.get('announce')} route(s), "
                         f"withdraw {step.get('withdraw')}")
        elif action == "add":
            lines.append(f"{where}: add (new session)")
        elif action == "remove":
            lines.append(f"{where}: remove (session shut down, its routes withdrawn)")
        if step.get("bfd"):
            lines.append(f"{where}: BFD {step['bfd']} (the BGP session is kept)")
        listed = route_lines(routes.get(step.get("neighbor")) or {})
        lines.extend(f"  {line}" for line in listed)
        any_routes = any_routes or bool(listed)
    listen = plan.get("listen") or {}
    if listen.get("before") != listen.get("after"):
        lines.append(f"listen: {_addresses(listen.get('before'))} -> {_addresses(listen.get('after'))}")
    for kind, what in (("processes", "process"), ("healthchecks", "healthcheck")):
        changes = plan.get(kind) or {}
        for verb, names in (("add", changes.get("added")), ("remove", changes.get("removed")),
                            ("change", changes.get("changed"))):
            lines.extend(f"{what} {name}: {verb}" for name in names or ())
    if not lines:
        lines.append("no change to sessions, routes, processes or health checks")
    if r.get("note"):
        lines.insert(0, f"note: {r['note']}")
    unchanged = plan.get("unchanged_neighbors", 0)
    if unchanged:
        lines.append(f"{unchanged} neighbor(s) unchanged")
    if plan.get("routes_note") and any_routes:
        lines.append(f"routes listed: {plan['routes_note']}")
    return "".join(f"{line}\n" for line in lines) + "dry run: nothing was applied\n"


def route_lines(step: dict[str, Any]) -> list[str]:
    """`+ PREFIX attrs (owner)`, `- PREFIX attrs (owner)`, `~ PREFIX med 100 -> 200 (owner)`."""
    out = [f"+ {_route(e)}" for e in step.get("announce", [])]
    out += [f"- {_route(e)}" for e in step.get("withdraw", [])]
    for e in step.get("change", []):
        diffs = ", ".join(f"{k} {_value(old)} -> {_value(new)}"
                          for k, (old, new) in e.get("changes", {}).items())
        out.append(f"~ {e.get('prefix')} {diffs} ({_owner(e)})")
    return out


def _route(e: dict[str, Any]) -> str:
    attrs = " ".join(f"{k} {v}" if v is not True else k for k, v in (e.get("attributes") or {}).items())
    return f"{e.get('prefix')} {attrs} ({_owner(e)})".replace("  ", " ")


def _owner(e: dict[str, Any]) -> str:
    return f"{e.get('owner')}, assumed UP" if e.get("assumed_up") else str(e.get("owner"))


def _value(v: Any) -> str:
    return "none" if v is None else str(v)


def _addresses(value: Any) -> str:
    return ", ".join(f"{a}:{p}" for a, p in value or ()) or "none"
