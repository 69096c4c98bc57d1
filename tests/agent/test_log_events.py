"""The `event` names of JSON log lines (logutil.log_event) are an interface: every name the agent's
code gives is documented in docs/agent/operations.md, and the table lists no name the code does not
use. (The JSON lines themselves, in every destination: test_settings_logging.py.)"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from fleetbgp import logsetup

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent" / "src" / "fleetbgp"
OPERATIONS = ROOT / "docs" / "agent" / "operations.md"


@functools.cache
def names_in_code() -> dict[str, list[str]]:
    """Every event name given to log_event(...) in the agent (both sides of a conditional), with
    where."""
    found: dict[str, list[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "log_event":
                assert len(node.args) == 1, f"{path}:{node.lineno}: log_event takes one name"
                consts = [c.value for c in ast.walk(node.args[0])
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                assert consts, f"{path}:{node.lineno}: the event name must be written out, not computed"
                for name in consts:
                    found.setdefault(name, []).append(f"{path.relative_to(AGENT)}:{node.lineno}")
    return found


def names_in_docs() -> set[str]:
    text = OPERATIONS.read_text()
    table = text.split("| `event` | level | logged when |", 1)[1].split("\n\n", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:] if row.startswith("|")]
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}


def test_the_code_names_events() -> None:
    found = names_in_code()
    assert {"session_established", "session_down", "healthcheck_state", "config_reloaded",
            "api_process_exit"} <= set(found)
    bad = [n for n in found if not re.fullmatch(r"[a-z]+(_[a-z]+)*", n)]
    assert not bad, f"event names are lower_snake_case: {bad}"


def test_every_event_name_is_documented_and_only_those() -> None:
    code, docs = set(names_in_code()), names_in_docs()
    assert code - docs == set(), f"log events missing from {OPERATIONS.name}'s table: {sorted(code - docs)}"
    assert docs - code - {logsetup.DEFAULT_EVENT} == set(), \
        f"{OPERATIONS.name} lists events no code logs: {sorted(docs - code - {logsetup.DEFAULT_EVENT})}"
