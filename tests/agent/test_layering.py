"""Plugins never import the agent package.

The Ansible modules and module_utils under plugins/ run on a managed host's own Python, where
fleetbgp may not be installed (or be another version): they reach the agent only through its
control socket. import-linter (`make lint`) checks the layering inside the agent; this checks the
collection's side of the line, which import-linter cannot see (plugins/ is no package of the agent).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
AGENT = "fleetbgp"
_DYNAMIC = ("import_module", "__import__")


def agent_imports(source: str, filename: str = "<source>") -> list[str]:
    """Where `source` imports the agent package: 'line N: what', static or importlib by name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else None
            if called in _DYNAMIC and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"line {node.lineno}: {name}" for name in names
                  if name == AGENT or name.startswith(AGENT + ".")]
    return found


def _plugin_files() -> list[Path]:
    # module_utils/fleetbgp_control.py is a symlink to the agent's control_client.py: it is read
    # too, as Ansible ships its content.
    return sorted(PLUGINS.rglob("*.py"))


def test_there_are_plugins_to_check():
    files = _plugin_files()
    assert any(p.parent.name == "modules" for p in files)
    assert any(p.parent.name == "module_utils" for p in files)


@pytest.mark.parametrize("path", _plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_plugin_does_not_import_the_agent(path: Path):
    assert agent_imports(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize("source", [
    "import fleetbgp",
    "import os, fleetbgp.control_client as c",
    "from fleetbgp import control_client",
    "from fleetbgp.wire.nlri import Family",
    "def f():\n    from fleetbgp.config import parser",
    "import importlib\nimportlib.import_module('fleetbgp.control_client')",
    "__import__('fleetbgp')",
])
def test_the_check_sees_an_agent_import(source: str):
    assert agent_imports(source) != []


@pytest.mark.parametrize("source", [
    "import fleetbgp_common",
    "from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_control import ControlClient",
    "from .fleetbgp_files import atomic_write",
    "x = 'fleetbgp'",
])
def test_the_check_lets_other_imports_be(source: str):
    assert agent_imports(source) == []
