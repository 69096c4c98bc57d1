"""Config snippets out of the operator docs, so tests can check every example parses."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent"


def config_examples(doc: Path) -> list[str]:
    """The untagged fenced blocks: config snippets (console and text blocks are tagged)."""
    out: list[str] = []
    current: list[str] | None = None
    tagged = False
    for line in doc.read_text(encoding="utf-8").splitlines():
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
