"""docs/agent/healthcheck.md: its config examples are valid, and it documents every option of
`fleetbgp healthcheck` and every keyword of the healthcheck block (so does configuration.md)."""

from __future__ import annotations

import pytest
from doc_examples import DOCS, config_examples

from fleetbgp.config import parse_text
from fleetbgp.config.parser import HealthCheckBlock
from fleetbgp.health.exabgp_program import build_parser

DOC = DOCS / "healthcheck.md"


def examples() -> list[str]:
    return config_examples(DOC)


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
