"""Routes from a request's arguments: `route`/`routes` in ExaBGP's syntax, or structured fields
(`prefix`, `next_hop`, `med`, ...) written out as that syntax and parsed by the config's own route
parser, so that both forms mean exactly what the same route means in the config."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config.lexer import tokenize_line
from ..grammar.errors import RouteError
from ..grammar.route import check_path_family, parse_prefix, parse_route, parse_route_attributes
from ..wire.fit import RouteTarget, first_foreign_next_hop, first_oversized
from ..wire.nlri import Family, nlri_to_prefix, path_key
from .protocol import ControlError

if TYPE_CHECKING:
    from ..wire.attributes import Attributes

Route = tuple["Family", bytes, "Attributes"]

# The arguments that carry routes as text.
TEXT_ARGS = ("route", "routes")

# Structured route fields (an alternative to the ExaBGP text form), in the order they are written.
FIELDS: tuple[tuple[str, str, str], ...] = (
    # (JSON name, ExaBGP keyword, kind)
    ("next_hop", "next-hop", "scalar"),
    ("origin", "origin", "scalar"),
    ("as_path", "as-path", "list"),
    ("med", "med", "scalar"),
    ("local_preference", "local-preference", "scalar"),
    ("community", "community", "list"),
    ("large_community", "large-community", "list"),
    ("extended_community", "extended-community", "list"),
    ("atomic_aggregate", "atomic-aggregate", "flag"),
    ("aggregator", "aggregator", "scalar"),
)
# Other names a field may be given under: JSON name -> its aliases.
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "community": ("communities",), "large_community": ("large_communities",),
    "extended_community": ("extended_communities",), "local_preference": ("local_pref",),
}
FIELD_NAMES = ("prefix", *(f[0] for f in FIELDS))


def _route_tokens(value: Any, cmd: str) -> list[str]:
    """A route in ExaBGP's syntax, with or without the leading `route` keyword."""
    if not isinstance(value, str) or not value.strip():
        raise ControlError("bad_request", f"{cmd}: a route is a string like "
                                          "'100.10.0.100/32 next-hop self med 100'")
    toks = tokenize_line(value.strip().rstrip(";"))
    if toks and toks[0] == "route":
        toks = toks[1:]
    if not toks:
        raise ControlError("invalid_route", f"{cmd}: empty route")
    return toks


def _structured_tokens(args: Mapping[str, Any]) -> list[str] | None:
    fields = {k: v for k, v in args.items() if k in FIELD_NAMES}
    if not fields:
        return None
    if "prefix" not in fields:
        raise ControlError("bad_request", "a structured route needs 'prefix'")
    toks = [_scalar_text(fields["prefix"], "prefix")]
    for name, keyword, kind in FIELDS:
        value = fields.get(name)
        if value is None or value is False:
            continue
        if kind == "flag":
            toks.append(keyword)
        elif kind == "list":
            items = value if isinstance(value, list) else [value]
            toks += [keyword, "[", *(_scalar_text(v, name) for v in items), "]"]
        else:
            toks += [keyword, _scalar_text(value, name)]
    return toks


def _scalar_text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ControlError("bad_request", f"'{what}' must be a string or a number")
    text = str(value).strip()
    if not text or any(c.isspace() or c in "[]();{}" for c in text):
        raise ControlError("bad_request", f"'{what}': {text!r} is not a single value")
    return text


def _route_texts(args: Mapping[str, Any], cmd: str) -> list[list[str]]:
    out: list[list[str]] = []
    for key in TEXT_ARGS:
        value = args.get(key)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append(_route_tokens(item, cmd))
    structured = _structured_tokens(args)
    if structured is not None:
        out.append(structured)
    if not out:
        raise ControlError("bad_request", f"{cmd}: give 'route' (ExaBGP syntax) or 'prefix' and fields")
    return out


def _invalid(cmd: str, toks: Sequence[str], exc: RouteError) -> ControlError:
    near = toks[exc.index] if 0 <= exc.index < len(toks) else ""
    where = f" (at {near!r}, word {exc.index + 1})" if near else ""
    return ControlError("invalid_route", f"{cmd} route {' '.join(toks)!r}: {exc.message}{where}")


def routes_from_args(args: Mapping[str, Any], cmd: str) -> list[Route]:
    """The routes of `args` (their route arguments as given, the others are not looked at)."""
    out = []
    for toks in _route_texts(args, cmd):
        try:
            out.append(parse_route(toks))
        except RouteError as exc:
            raise _invalid(cmd, toks, exc) from None
    return out


def prefixes_from_args(args: Mapping[str, Any]) -> list[tuple[Family, bytes]]:
    """A withdrawal needs only the prefix; attributes, if given, must still be valid."""
    out = []
    for toks in _route_texts(args, "withdraw"):
        try:
            fam, nlri = parse_prefix(toks)
            if len(toks) > 1:
                # Attributes are checked; a path-information says which path of the prefix goes.
                _attrs, path_id = parse_route_attributes(toks, fam, 1, require_next_hop=False)
                if path_id:
                    check_path_family(fam, 0)
                    nlri = path_key(nlri, path_id)
        except RouteError as exc:
            raise _invalid("withdraw", toks, exc) from None
        out.append((fam, nlri))
    return out


def check_sizes(routes: list[Route], chosen: Callable[[], Iterable[RouteTarget]]) -> None:
    """Every route must fit in one UPDATE to the neighbors it is for (`chosen()`, asked only when
    a route is large enough to matter), or none is announced."""
    found = first_oversized(routes, chosen)
    if found is None:
        # An IPv4 route with an IPv6 next hop reaches only neighbors with RFC 8950's extended
        # next hop: refused here rather than never sent.
        found = first_foreign_next_hop(routes, chosen)
    if found is not None:
        fam, nlri, problem = found
        raise ControlError("invalid_route", f"announce route {nlri_to_prefix(fam, nlri)}: {problem}")
