"""Who put a route in an adj-rib-out: the config file, an API program, a health check, a control
socket client, or nobody we keep track of.

The text forms (`config`, `process:NAME`, `health:NAME`, `control:NAME`, `runtime`) are a documented
interface (the `owner` fields of the control socket's JSON, log lines, docs): `str()` gives them and
`Owner.parse` reads them back. Inside the agent an owner is this value, never a string to build or
split, so that a typo in a prefix is a type error, not a route nobody can withdraw.

Owners are interned: equal owners are the same object, so an adj-rib-out compares them by identity
(as fast as comparing interned strings; a dataclass __eq__ made `owned_by` over a million tracked
routes four times slower) and stores one reference per tracked route, never an object per route.
"""

from __future__ import annotations

import enum
import threading
import weakref
from typing import Any, ClassVar


class OwnerKind(enum.Enum):
    CONFIG = "config"
    PROCESS = "process"  # an API program (`process NAME`)
    HEALTH = "health"  # a `healthcheck NAME` block
    CONTROL = "control"  # a control socket client (`owner` of its request, `cli` by default)
    RUNTIME = "runtime"  # announced at run time by someone who asked not to be tracked


# The kinds whose owners carry a name (`KIND:NAME`); the others are the bare word.
NAMED_KINDS = frozenset({OwnerKind.PROCESS, OwnerKind.HEALTH, OwnerKind.CONTROL})


class Owner:
    """An immutable, interned owner: `Owner(kind, name)` returns the one instance for that pair.
    Equality and hashing are identity, which interning makes the same as value equality."""

    __slots__ = ("kind", "name", "_text", "__weakref__")
    kind: OwnerKind
    name: str
    _text: str
    # Weak: a control client may pick any name; an owner nobody refers to any more is forgotten.
    _interned: ClassVar[weakref.WeakValueDictionary[tuple[OwnerKind, str], Owner]] = \
        weakref.WeakValueDictionary()
    _interning: ClassVar[threading.Lock] = threading.Lock()  # two threads must not make two of one owner

    def __new__(cls, kind: OwnerKind, name: str = "") -> Owner:
        key = (kind, name)
        owner = cls._interned.get(key)
        if owner is not None:
            return owner
        if name and kind not in NAMED_KINDS:
            raise ValueError(f"owner {kind.value} has no name (got {name!r})")
        with cls._interning:
            owner = cls._interned.get(key)
            if owner is None:
                owner = super().__new__(cls)
                text = f"{kind.value}:{name}" if kind in NAMED_KINDS else kind.value
                for attr, value in (("kind", kind), ("name", name), ("_text", text)):
                    object.__setattr__(owner, attr, value)
                cls._interned[key] = owner
        return owner

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"Owner is immutable (cannot set {attr})")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"Owner is immutable (cannot delete {attr})")

    def __reduce__(self) -> tuple[type[Owner], tuple[OwnerKind, str]]:
        return Owner, (self.kind, self.name)  # copies and pickles come back interned

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Owner({self._text!r})"

    @classmethod
    def parse(cls, text: str) -> Owner:
        """The owner a text form names; ValueError for anything else. Only the first colon
        separates: a name may hold colons of its own (`control:team:a`)."""
        kind_text, colon, name = text.partition(":")
        try:
            kind = OwnerKind(kind_text)
        except ValueError:
            raise ValueError(f"unknown owner {text!r}: config, runtime, process:NAME, health:NAME "
                             "or control:NAME") from None
        if (kind in NAMED_KINDS) != bool(colon):
            need = f"takes a name ({kind.value}:NAME)" if kind in NAMED_KINDS else "takes no name"
            raise ValueError(f"owner {text!r}: {kind.value} {need}")
        return cls(kind, name)

    @classmethod
    def process(cls, name: str) -> Owner:
        return cls(OwnerKind.PROCESS, name)

    @classmethod
    def health(cls, name: str) -> Owner:
        return cls(OwnerKind.HEALTH, name)

    @classmethod
    def control(cls, name: str) -> Owner:
        return cls(OwnerKind.CONTROL, name)


CONFIG = Owner(OwnerKind.CONFIG)
RUNTIME = Owner(OwnerKind.RUNTIME)
