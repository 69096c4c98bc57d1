"""ExaBGP 5.0.15's example configs (etc/exabgp/*.conf) through `fleetbgp validate`.

ExaBGP accepts every one of them (checked once, by hand; see example_expectations.py). Each file's
outcome with us is pinned in example_expectations.EXPECTED: accepted, or refused with the place
(FILE:LINE:COL) and the message of the first error. A changed outcome fails with our full output, so
a regression (a file we accepted is now refused) and progress (a todo file now accepted: update the
pin) both show.

The CLI is called in-process (fleetbgp.cli.main), so the 86 files take well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from example_expectations import EXPECTED, REASONS

from fleetbgp import cli

EXAMPLES = Path(__file__).parent / "vendor" / "exabgp" / "etc" / "exabgp"

OUT_OF_SCOPE = {
    "VPN/MPLS", "MUP", "BGP-LS", "VPLS", "multicast VPN", "flow-vpn", "multi-session", "operational",
    "generic attribute", "flow interface-set (scope)",
}
_DIAG = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): \S")


def _example_files() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES.glob("*.conf"))


def _validate(name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              ) -> tuple[int, str, str]:
    """`fleetbgp validate NAME` from the examples' directory (messages then name the bare file)."""
    monkeypatch.chdir(EXAMPLES)
    capsys.readouterr()
    rc = cli.main(["validate", name])
    out, err = capsys.readouterr()
    return rc, out, err


def test_examples_are_vendored() -> None:
    assert EXAMPLES.is_dir(), f"{EXAMPLES} is missing: the vendored ExaBGP example configs"
    files = set(_example_files())
    assert files, f"no .conf in {EXAMPLES}"
    assert sorted(files - EXPECTED.keys()) == [], "example configs without a pin in EXPECTED"
    assert sorted(EXPECTED.keys() - files) == [], "pins in EXPECTED for files that are not vendored"


def test_expectations_are_consistent() -> None:
    refused = {name for name, (outcome, _) in EXPECTED.items() if outcome == "refused"}
    assert {outcome for outcome, _ in EXPECTED.values()} <= {"accepted", "refused"}
    assert sorted(refused ^ REASONS.keys()) == [], "every refusal (and only those) needs a reason"
    for name, reason in REASONS.items():
        kind, _, what = reason.partition(": ")
        assert what, f"{name}: reason {reason!r} is not 'out of scope: ...', 'stricter: ...' or 'todo: ...'"
        assert kind in ("todo", "stricter") or (kind == "out of scope" and what in OUT_OF_SCOPE), (name, reason)
    for name, (outcome, first) in EXPECTED.items():
        if outcome == "accepted":
            assert first == "", name
        else:
            m = _DIAG.match(first)
            assert m and m["file"] == name, f"{name}: pin {first!r} must start with {name}:LINE:COL: "


@pytest.mark.parametrize("name", _example_files() or sorted(EXPECTED))
def test_example(name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if not (EXAMPLES / name).is_file():
        pytest.fail(f"{EXAMPLES / name} is missing")
    outcome, first = EXPECTED[name]
    rc, out, err = _validate(name, capsys, monkeypatch)
    shown = f"fleetbgp validate {name}: exit {rc}\n{out}{err}"
    if outcome == "accepted":
        assert rc == cli.EXIT_OK, f"pinned as accepted, but refused:\n{shown}"
        assert out.startswith(f"{name}: OK: "), shown
        return
    assert rc == cli.EXIT_INVALID, f"pinned as refused ({REASONS[name]}: {first}), but:\n{shown}"
    lines = err.splitlines()
    assert lines, shown
    # Every diagnostic names FILE:LINE:COL (line and column from 1), then the count.
    assert re.fullmatch(rf"{re.escape(name)}: \d+ errors?", lines[-1]), shown
    for line in lines[:-1]:
        m = _DIAG.match(line)
        assert m and m["file"] == name and int(m["line"]) > 0 and int(m["col"]) > 0, (
            f"diagnostic without FILE:LINE:COL: {line!r}\n{shown}")
    assert lines[0].startswith(first), (
        f"first error changed ({REASONS[name]}):\n  pinned: {first}\n  now:    {lines[0]}\n{shown}")
