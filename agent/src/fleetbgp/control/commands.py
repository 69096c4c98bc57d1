"""The control commands, each registered once with the schema of its arguments (in the manner of
ExaBGP's `Command.register`): `COMMANDS` is the only list of their names, in the order the
`unknown_command` error lists them, and the server serves nothing else.

A command's `Arg`s are checked in the order they are declared, before its handler runs: an unknown
argument or a value of the wrong kind is refused with `bad_request` and a message naming it (the
messages are part of the protocol: docs/agent/operations.md, and tests pin them). What needs the
agent (is that neighbor configured? does the route fit?) is the handler's to check."""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..grammar.errors import RouteError
from ..grammar.route import parse_prefix
from ..owner import RUNTIME, Owner
from ..wire.nlri import Family, family_from_name
from . import routes
from .protocol import ControlError, Stream, short
from .query import RouteQuery
from .views import peer_info

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..wire.fit import RouteTarget
    from .ports import PeerView, SpeakerPort

DEFAULT_OWNER = Owner.control("cli")
DEFAULT_ROUTE_LIMIT = 1000    # `routes` returns at most this many unless asked (limit 0: all)
MAX_ROUTE_LIMIT = 100_000_000  # a larger `limit` is a mistake (0 asks for everything)


class _Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = _Absent.ABSENT
"""The default of an argument that, when not given, is not passed to the handler at all."""

# An argument's check: its JSON value in, the handler's value out (any JSON value in, and what comes
# out is the argument's own: a list of names, a family set, a bool), or ControlError.
Check = Callable[[Any], Any]
Args = dict[str, Any]  # checked argument values by name, each of its own type (see the Arg)


def _as_given(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a command. An absent argument takes `default` (then checked like a given
    one: a required argument is one whose check refuses its default), or is left out when that
    is ABSENT. `aliases` are other names it may be given under; the first given wins, `name`
    first."""

    name: str
    check: Check = _as_given
    default: Any = ABSENT  # a JSON value, or ABSENT
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler works with: the agent, and the server's own facts."""

    speaker: SpeakerPort
    socket_path: str | None


Handler = Callable[[Context, Args], Awaitable[Any]]  # result: JSON, or a Stream


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[Arg, ...]
    handler: Handler
    changes: bool  # changes something: logged at INFO with the client (docs/agent/operations.md)
    hidden: frozenset[str] = frozenset()  # arguments never logged (a candidate config has secrets)

    def logged(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The request's arguments as the log shows them: the hidden ones as `<hidden>`."""
        return {k: "<hidden>" if k in self.hidden else v for k, v in given.items()}

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset(n for arg in self.args for n in (arg.name, *arg.aliases))

    def bind(self, given: Mapping[str, Any]) -> Args:
        """The checked arguments of a request, or ControlError."""
        accepted = self.accepted
        unknown = sorted(set(given) - accepted)
        if unknown:
            raise ControlError("bad_request", f"{self.name}: unknown argument(s) "
                                              f"{', '.join(map(repr, unknown))} "
                                              f"(known: {', '.join(sorted(accepted))})")
        out: Args = {}
        for arg in self.args:
            value = next((given[n] for n in (arg.name, *arg.aliases) if n in given), arg.default)
            if value is not ABSENT:
                out[arg.name] = arg.check(value)
        return out

    async def run(self, ctx: Context, given: Mapping[str, Any]) -> Any:
        return await self.handler(ctx, self.bind(given))


COMMANDS: dict[str, Command] = {}
"""Every command by name, in the order they are registered (the order `unknown_command` lists)."""


def command(name: str, *args: Arg, changes: bool = False,
            hidden: frozenset[str] = frozenset()) -> Callable[[Handler], Handler]:
    """Register the decorated handler as the command `name` taking `args`."""
    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"control command {name!r} registered twice")
        COMMANDS[name] = Command(name, args, handler, changes, hidden)
        return handler
    return register


# -- argument checks ------------------------------------------------------------------------------


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ControlError("bad_request", f"'{what}' must be a non-empty string")
    return value.strip()


def _names(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [v for v in value.replace(",", " ").split() if v]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise ControlError("bad_request", f"'{what}' must be an address or a list of addresses")
    if not items:
        raise ControlError("bad_request", f"'{what}' is empty")
    return items


def _neighbor_names(what: str) -> Check:
    """Neighbor addresses (a list, or one string with commas or spaces); null: every neighbor.
    Whether they are configured is the handler's to ask (`_select`)."""
    def check(value: Any) -> list[str] | None:
        return _names(value, what)
    return check


def _runtime_owner(value: Any) -> Owner:
    """Runtime routes from the control socket are always owned by `control:SOMETHING`, so a client
    cannot touch routes of the config, an API program or a health check by naming their owner."""
    if value is None:
        return DEFAULT_OWNER
    text = _string(value, "owner")
    if any(c.isspace() for c in text):
        raise ControlError("bad_request", "'owner' must not contain spaces")
    return Owner.control(text.removeprefix("control:"))


def _owner_filter(value: Any) -> Owner | None:
    """Any owner may be looked at; a bare NAME means control:NAME."""
    if value is None:
        return None
    text = _string(value, "owner")
    try:
        owner: Owner | None = Owner.parse(text)
    except ValueError:
        owner = None
    if owner is None or owner is RUNTIME:  # nobody is tracked as `runtime`: a client's name
        owner = Owner.control(text)
    return owner


def _family_filter(value: Any) -> set[Family] | None:
    if value is None:
        return None
    out: set[Family] = set()
    for text in (value if isinstance(value, list) else [value]):
        if not isinstance(text, str):
            raise ControlError("bad_request", "'family' must be like 'ipv4 unicast' or 'ipv6'")
        words = text.replace("-", " ").replace("/", " ").split()
        if len(words) == 1:
            words.append("unicast")
        fam = family_from_name(*words) if len(words) == 2 else None
        if fam is None:
            raise ControlError("bad_request",
                               f"unknown family {text!r} (like 'ipv4 unicast', 'ipv6 unicast')")
        out.add(fam)
    return out


def _prefix(value: Any) -> tuple[Family, bytes] | None:
    if value is None:
        return None
    text = _string(value, "prefix")
    try:
        return parse_prefix([text])
    except RouteError as exc:
        raise ControlError("invalid_route", f"prefix {text!r}: {exc.message}") from None


def _match(value: Any) -> str:
    if not isinstance(value, str) or value not in ("exact", "longer"):
        raise ControlError("bad_request", "routes: 'match' must be 'exact' or 'longer'")
    return value


def _limit(value: Any) -> int:
    if value is None:
        return 0
    # Checked in full here: once the streamed reply has begun, an error cannot be reported.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ROUTE_LIMIT:
        raise ControlError("bad_request", f"routes: 'limit' must be a whole number 0..{MAX_ROUTE_LIMIT} "
                                          f"(0: no limit), not {short(repr(value), 40)}")
    return value


def _received(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ControlError("bad_request", "routes: 'received' must be true (adj-rib-in) or false")
    return value


def _all(value: Any) -> bool:
    if not isinstance(value, bool):  # "all": "no" must not withdraw everything
        raise ControlError("bad_request", "withdraw: 'all' must be true or false")
    return value


def _maintenance_state(value: Any) -> bool | None:
    if value is None:
        return None
    if value is True or value in ("on", "enable", "drain"):
        return True
    if value is False or value in ("off", "disable", "undrain"):
        return False
    raise ControlError("bad_request", "maintenance: 'state' must be 'on' or 'off', not "
                                      f"{short(repr(value), 40)}")


def _flow_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ControlError("bad_request", "flow_announce: 'name' must be a string")
    return value


def _flow_match(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ControlError("bad_request", "flow_announce: 'match' must be an object like "
                                          '{"destination": "192.0.2.0/24", "destination-port": "=80"}')
    return value


def _flow_then(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ControlError("bad_request", "flow_announce: 'then' must be an object like "
                                          '{"discard": true}')
    return value


def _flow_family(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ControlError("bad_request", "flow_announce: 'family' must be 'ipv4' or 'ipv6'")
    return value


def _non_empty_name(value: Any) -> str:
    return _string(value, "name")


# The arguments that name the neighbors a change is for (default: all).
_NEIGHBORS = Arg("neighbors", _neighbor_names("neighbors"), None, aliases=("neighbor",))
# A route: `route`/`routes` in ExaBGP's syntax or structured fields, read together by routes.py.
_ROUTE = tuple(Arg(name, aliases=routes.FIELD_ALIASES.get(name, ()))
               for name in (*routes.TEXT_ARGS, *routes.FIELD_NAMES))


# -- agent lookups --------------------------------------------------------------------------------


def _select(ctx: Context, names: list[str] | None) -> list[PeerView]:
    try:
        return list(ctx.speaker.select(names))
    except ValueError as exc:
        raise ControlError("unknown_neighbor", str(exc)) from None


# -- the commands, in the order `unknown_command` lists them --------------------------------------


@command("status")
async def _status(ctx: Context, args: Args) -> Any:
    status = dict(ctx.speaker.status())
    status.setdefault("control_socket", ctx.socket_path)
    status.setdefault("settings", ctx.speaker.settings.as_dict())
    return status


@command("neighbors", Arg("neighbor", _neighbor_names("neighbor"), None))
async def _neighbors(ctx: Context, args: Args) -> Any:
    peers = _select(ctx, args["neighbor"])
    now = time.time()
    return {"neighbors": [peer_info(p, now) for p in peers]}


@command("routes",
         Arg("neighbor", _neighbor_names("neighbor"), None),
         Arg("family", _family_filter, None),
         Arg("match", _match, "exact"),
         Arg("prefix", _prefix, None),
         Arg("owner", _owner_filter, None),
         Arg("limit", _limit, DEFAULT_ROUTE_LIMIT),
         Arg("received", _received, False))
async def _routes(ctx: Context, args: Args) -> Any:
    peers = _select(ctx, args["neighbor"])
    families: set[Family] | None = args["family"]
    prefix: tuple[Family, bytes] | None = args["prefix"]
    if prefix is not None:
        families = set() if families is not None and prefix[0] not in families else {prefix[0]}
    owner: Owner | None = args["owner"]
    received: bool = args["received"]
    if received and owner is not None:
        raise ControlError("bad_request", "routes: 'owner' applies to our routes, not received ones")
    query = RouteQuery(ctx.speaker, peers, families, prefix, args["match"], owner, args["limit"],
                       received)
    return Stream(query.chunks())


@command("health")
async def _health(ctx: Context, args: Args) -> Any:
    health = ctx.speaker.health
    if health is None:
        return {"checks": []}
    return {"checks": list(health.status())}


@command("processes")
async def _processes(ctx: Context, args: Args) -> Any:
    api = ctx.speaker.api
    if api is None:
        return {"processes": []}
    return {"processes": list(api.status())}


@command("announce", Arg("owner", _runtime_owner, None), _NEIGHBORS, *_ROUTE, changes=True)
async def _announce(ctx: Context, args: Args) -> Any:
    owner: Owner = args["owner"]
    neighbors: list[str] | None = args["neighbors"]
    _select(ctx, neighbors)  # fail before changing anything
    found = routes.routes_from_args(args, "announce")

    def chosen() -> Iterator[RouteTarget]:
        return (p.neighbor for p in ctx.speaker.select(neighbors))

    routes.check_sizes(found, chosen)
    changed = 0
    for fam, nlri, attrs in found:
        changed += ctx.speaker.announce(fam, nlri, attrs, owner=owner, neighbors=neighbors)
    return {"routes": len(found), "changed": changed, "owner": str(owner),
            "maintenance": bool(ctx.speaker.maintenance)}


@command("withdraw", Arg("owner", _runtime_owner, None), _NEIGHBORS, Arg("all", _all, False), *_ROUTE,
         changes=True)
async def _withdraw(ctx: Context, args: Args) -> Any:
    owner: Owner = args["owner"]
    neighbors: list[str] | None = args["neighbors"]
    _select(ctx, neighbors)  # fail before changing anything
    if args["all"]:
        if any(k in args for k in ("route", "routes", "prefix")):
            raise ControlError("bad_request", "withdraw: give either 'all' or routes, not both")
        changed = ctx.speaker.withdraw_owner(owner, neighbors)
        return {"routes": None, "changed": changed, "owner": str(owner)}
    prefixes = routes.prefixes_from_args(args)
    changed = 0
    for fam, nlri in prefixes:
        changed += ctx.speaker.withdraw(fam, nlri, owner=owner, neighbors=neighbors)
    return {"routes": len(prefixes), "changed": changed, "owner": str(owner)}


@command("maintenance", Arg("state", _maintenance_state, None), changes=True)
async def _maintenance(ctx: Context, args: Args) -> Any:
    state: bool | None = args["state"]
    before = bool(ctx.speaker.maintenance)
    if state is not None:
        ctx.speaker.set_maintenance(state)
    settings = ctx.speaker.settings
    after = bool(ctx.speaker.maintenance)
    return {"maintenance": after, "changed": after != before,
            "mode": settings.maintenance_mode, "metric": settings.maintenance_metric}


def _boolean(what: str) -> Check:
    """true or false, nothing else (no "yes", no 1): `what` names the command and argument."""
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ControlError("bad_request", f"{what} must be true or false, not {short(value)}")
        return value
    return check


def _candidate(value: Any) -> dict[str, Any] | None:
    """`config`: {"name": FILE, "text": TEXT[, "env": {NAME: VALUE}]}, a candidate file to plan
    (the client reads it: the agent may not be allowed to read a file the operator's tools wrote;
    `env`: the secrets its env['NAME'] references read)."""
    if value is None:
        return None
    env = value.get("env", {}) if isinstance(value, dict) else None
    if (not isinstance(value, dict) or not {"name", "text"} <= set(value) <= {"name", "text", "env"}
            or not isinstance(value["name"], str) or not isinstance(value["text"], str)
            or not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in env.items())):
        raise ControlError("bad_request", 'reload: config must be {"name": FILE, "text": CONTENT, '
                                          '"env": {NAME: VALUE}} (env optional)')
    return value


@command("reload", Arg("dry_run", _boolean("reload: dry_run"), False), Arg("config", _candidate, None),
         changes=True, hidden=frozenset({"config"}))
async def _reload(ctx: Context, args: Args) -> Any:
    # No lock of our own: the Speaker serialises reloads, whoever asks (signal, socket, CLI).
    dry_run: bool = args["dry_run"]
    config: dict[str, Any] | None = args["config"]
    if config is not None and not dry_run:
        raise ControlError("bad_request", "reload: a config can only be planned (dry_run true); "
                                          "to apply it, install it as the agent's config file")
    candidate = None if config is None else (config["name"], config["text"], config.get("env", {}))
    if candidate is None:
        result = await ctx.speaker.reload(dry_run=dry_run)
    else:
        result = await ctx.speaker.reload(dry_run=True, candidate=candidate)
    if not result.ok:
        raise ControlError("reload_failed", result.summary or "reload refused",
                           details=list(result.errors))
    reply: dict[str, Any] = {"ok": True, "summary": result.summary, "errors": list(result.errors)}
    if result.plan is not None:
        reply["plan"] = result.plan.as_dict(routes=dry_run)
    if dry_run:
        reply["applied"] = False
    if candidate is not None:
        reply["agent"] = "running"  # planned against it (without an agent the CLI plans against nothing)
        reply["config_sha256"] = getattr(result, "sha256", "")
    return reply


@command("restart", Arg("graceful", _boolean("restart: graceful"), False), changes=True)
async def _restart(ctx: Context, args: Args) -> Any:
    # The agent stops a moment after this reply and exits with its restart status, which the
    # systemd unit restarts at once (docs/agent/running.md, "Stopping and restarting").
    return ctx.speaker.request_restart(args["graceful"])


@command("flow_announce",
         Arg("name", _flow_name, None),
         Arg("match", _flow_match, None),
         Arg("then", _flow_then, None),
         Arg("family", _flow_family, None),
         _NEIGHBORS,
         Arg("expires_after", default=None),  # checked by the FlowSpec rules (invalid_flow)
         Arg("owner", _runtime_owner, None),
         changes=True)
async def _flow_announce(ctx: Context, args: Args) -> Any:
    neighbors: list[str] | None = args["neighbors"]
    _select(ctx, neighbors)  # fail before changing anything
    try:
        return ctx.speaker.flows.add_rule(args["name"], args["match"], args["then"],
                                          family=args["family"], neighbors=neighbors,
                                          expires_after=args["expires_after"], owner=args["owner"])
    except ValueError as exc:  # FlowSpecError (the component and why) is a ValueError too
        raise ControlError("invalid_flow", str(exc)) from None


@command("flow_withdraw", Arg("name", _non_empty_name, None), changes=True)
async def _flow_withdraw(ctx: Context, args: Args) -> Any:
    try:
        return {"changed": ctx.speaker.flows.remove_rule(args["name"])}
    except ValueError as exc:  # a config rule: the config file owns it
        raise ControlError("invalid_flow", str(exc)) from None


@command("flows")
async def _flows(ctx: Context, args: Args) -> Any:
    return ctx.speaker.flows.list()
