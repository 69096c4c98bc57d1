"""The config examples in docs/agent/configuration.md are valid configs."""

from __future__ import annotations

import pytest
from doc_examples import DOCS, config_examples

from fleetbgp.config import parse_text

DOC = DOCS / "configuration.md"
TOP = ("neighbor", "template", "process", "listen", "healthcheck")
WRAP_HEAD = "local-as 65001;\npeer-as 65000;\nrouter-id 192.0.2.2;\n"
EXTRA = "process prometheus_exporter { run /bin/true; }\n"


def examples() -> list[str]:
    return config_examples(DOC)


def test_the_doc_has_examples():
    assert len(examples()) >= 7


@pytest.mark.parametrize("index", range(len(examples())))
def test_doc_example_parses(index, monkeypatch):
    monkeypatch.setenv("BGP_MD5_PASSWORD", "example")
    monkeypatch.setenv("BFD_KEY", "example")
    text = examples()[index]
    first = next(line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if first not in TOP:
        text = f"neighbor 192.0.2.1 {{\n{WRAP_HEAD}{text}}}\n" + (EXTRA if "prometheus_exporter" in text else "")
    parse_text(text, f"example-{index}.conf")


def table_examples() -> list[str]:
    """The 'example' column of the neighbor settings table."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Neighbor settings"):text.index("### `family")]
    out = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[3].startswith("`") and cells[3].endswith(";`"):
            out.append(cells[3].strip("`"))
    return out


def test_every_neighbor_keyword_has_a_table_example():
    assert len(table_examples()) == 20


@pytest.mark.parametrize("example", table_examples())
def test_neighbor_table_example_parses(example, monkeypatch):
    monkeypatch.setenv("BGP_MD5_PASSWORD", "example")
    head = WRAP_HEAD
    for keyword in ("local-as", "peer-as", "router-id"):
        if example.startswith(keyword):
            head = "\n".join(line for line in head.splitlines() if not line.startswith(keyword)) + "\n"
    parse_text(f"template {{ neighbor edge {{ hold-time 30; }} }}\n"
               f"neighbor 192.0.2.1 {{\n{head}{example}\n}}\n", "table.conf")
