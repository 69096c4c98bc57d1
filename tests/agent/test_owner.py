"""Route owners: the text forms are a documented interface (control socket JSON `owner`, logs)."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetbgp.owner import CONFIG, RUNTIME, Owner, OwnerKind


@pytest.mark.parametrize(("owner", "text"), [
    (CONFIG, "config"),
    (RUNTIME, "runtime"),
    (Owner.process("hc"), "process:hc"),
    (Owner.health("web"), "health:web"),
    (Owner.control("cli"), "control:cli"),
    (Owner.control("team:a"), "control:team:a"),  # only the first colon separates
    (Owner.control(""), "control:"),
])
def test_text_forms(owner: Owner, text: str) -> None:
    assert str(owner) == text
    assert Owner.parse(text) is owner


@pytest.mark.parametrize("text", ["", "cli", "process", "health", "config:x", "runtime:", "Process:a",
                                  "static", " config"])
def test_parse_refuses_other_texts(text: str) -> None:
    with pytest.raises(ValueError, match="owner"):
        Owner.parse(text)


def test_config_and_runtime_have_no_name() -> None:
    with pytest.raises(ValueError, match="no name"):
        Owner(OwnerKind.CONFIG, "x")


def test_equal_owners_are_one_object() -> None:
    """Interned: an adj-rib-out compares owners by identity."""
    a = Owner.process("a")
    assert Owner(OwnerKind.PROCESS, "a") is a and Owner.parse("process:a") is a
    assert a == Owner.process("a") and a != Owner.health("a") and a != "process:a"
    assert {a: 1}[Owner.process("a")] == 1
    assert copy.copy(a) is a and copy.deepcopy(a) is a and pickle.loads(pickle.dumps(a)) is a


def test_owners_are_immutable() -> None:
    a = Owner.control("x")
    with pytest.raises(AttributeError):
        a.name = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.kind


@given(st.sampled_from(sorted(k.value for k in (OwnerKind.PROCESS, OwnerKind.HEALTH, OwnerKind.CONTROL))),
       st.text(max_size=20))
def test_named_owners_round_trip(kind: str, name: str) -> None:
    owner = Owner.parse(f"{kind}:{name}")
    assert owner.kind.value == kind and owner.name == name
    assert Owner.parse(str(owner)) is owner
