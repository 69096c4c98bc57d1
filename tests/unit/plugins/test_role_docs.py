"""docs/roles/*.md cannot miss a role variable: their Variables section is generated from
roles/*/meta/argument_specs.yml (scripts/role-docs.py, `make role-docs`) and must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "role-docs.py"

# scripts/ is developer tooling, left out of the built collection (galaxy.yml build_ignore)
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="scripts/role-docs.py is not in the built collection")


def _generator():
    spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _paths(options: dict, prefix: str = "") -> list[str]:
    out = []
    for name, o in (options or {}).items():
        out.append(prefix + name)
        if (o or {}).get("options"):
            out += _paths(o["options"], f"{prefix}{name}[]." if o.get("type") == "list" else f"{prefix}{name}.")
    return out


def test_role_pages_are_up_to_date():
    gen = _generator()
    stale = [str(p.relative_to(REPO)) for p, text in gen.render().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"stale (a spec changed, the page was not regenerated): {stale}; run `make role-docs`"


def test_generator_is_deterministic():
    gen = _generator()
    assert gen.render() == gen.render()


ROLES = sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_every_spec_option_appears_in_its_page(role):
    gen = _generator()
    page = (REPO / "docs" / "roles" / f"{role}.md").read_text()
    begin, end = gen.BEGIN.format(role=role), gen.END
    assert page.count(begin) == 1 and page.count(end) == 1, f"docs/roles/{role}.md: one BEGIN and one END marker"
    generated = page[page.index(begin):page.index(end)]
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    missing = []
    for entry, spec in specs.items():
        assert f"### `{entry}`" in generated, f"entry point {entry} has no heading"
        missing += [f"{entry}: {p}" for p in _paths(spec.get("options") or {}) if f"| `{p}` |" not in generated]
    assert not missing, f"docs/roles/{role}.md lacks: {missing}"
