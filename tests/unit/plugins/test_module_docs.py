"""docs/modules/*.md are generated from the modules (scripts/module-docs.py) and must not go stale;
ansible-doc renders every module. The generator (scripts/module-docs.py) is a developer tool that the
collection does not ship: these tests run on the checkout only (marker `checkout`, conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.checkout
def test_module_reference_pages_are_up_to_date():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "module-docs.py"), "--check"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, (
        f"docs/modules is stale: run `.venv/bin/python scripts/module-docs.py`\n{out.stdout}{out.stderr}")


def test_every_module_has_a_page_and_the_index_links_it():
    modules = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py"))
    assert modules == ["agent_info", "flowspec", "flowspec_info", "interface_addresses", "maintenance", "route", "sysctl_file"]
    index = (REPO / "docs" / "modules" / "README.md").read_text()
    for name in modules:
        page = (REPO / "docs" / "modules" / f"{name}.md").read_text()
        assert page.splitlines()[2] == f"# fleet.bgp.{name}"
        for section in ("## Synopsis", "## Options", "## Examples", "## Return values"):
            assert section in page, f"{name}.md has no {section}"
        assert f"({name}.md)" in index


@pytest.mark.checkout
def test_ansible_doc_renders_every_module():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import importlib

        docs = importlib.import_module("module-docs")
    finally:
        sys.path.pop(0)
    data = docs.ansible_doc(docs.modules())
    for name in docs.modules():
        entry = data[f"fleet.bgp.{name}"]
        assert entry["doc"]["short_description"]
        assert entry["examples"].strip()
        assert entry["return"]
        # the modules that do not talk to the agent (roles fleet.bgp.sysctl, fleet.bgp.service_addresses)
        if name not in ("sysctl_file", "interface_addresses"):
            assert "socket" in entry["doc"]["options"], "the control doc fragment is applied"
