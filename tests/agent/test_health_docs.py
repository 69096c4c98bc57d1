"""docs/agent/healthcheck.md: its config examples are valid, and it documents every option of
`fleetbgp healthcheck` and every keyword of the healthcheck block (so does configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbgp.config import parse_text
from fleetbgp.config.parser import HealthCheckBlock
from fleetbgp.health.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent"
DOC = DOCS / "healthcheck.md"


def examples() -> list[str]:
    """The untagged fenced blocks: config snippets (console, text blocks are tagged)."""
    out: list[str] = []
    current: list[str] | None = None
    tagged = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if current is None:
                current, tagged = [], line != "```"
            else:
                if not tagged:
                    out.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return out


def test_the_doc_has_examples():
    assert len(examples()) >= 7


@pytest.mark.parametrize("index", range(len(examples())))
def test_doc_example_parses(index):
    config = parse_text(examples()[index], f"example-{index}.conf")
    assert config.healthchecks


def test_every_program_option_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = [opt for action in build_parser()._actions for opt in action.option_strings
               if opt.startswith("--") and f"`{opt}" not in text]
    assert not missing, f"options not in healthcheck.md: {missing}"


@pytest.mark.parametrize("doc", ["healthcheck.md", "configuration.md"])
def test_every_block_keyword_is_documented(doc):
    text = (DOCS / doc).read_text(encoding="utf-8")
    missing = [k for k in HealthCheckBlock.STATEMENTS if f"`{k}" not in text and f" {k}`" not in text
               and f"`{k} " not in text and f", {k}" not in text]
    assert not missing, f"healthcheck keywords not in {doc}: {missing}"
