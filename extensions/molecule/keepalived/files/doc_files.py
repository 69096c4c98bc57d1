#!/usr/bin/env python3
"""The files an operator's guide gives in full: its fenced code blocks that name their path.

A block names its path in its first line, or in its second when the first is a `#!` line:
`# /etc/keepalived/keepalived.conf`. Prints a JSON list of {"path", "content", "mode"} (mode 0755
for a `#!` script, else 0644), in the order of the guide. Converge installs them unchanged and
verify compares them with what is on the hosts, so the guide and the test cannot drift apart.

    doc_files.py docs/operations/keepalived.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
PATH_LINE = re.compile(r"^# (/\S+)$")


def doc_files(text: str) -> list[dict[str, str]]:
    files = []
    for block in FENCE.findall(text):
        lines = block.splitlines()
        script = bool(lines) and lines[0].startswith("#!")
        named = lines[1 if script else 0 : 2 if script else 1]
        m = PATH_LINE.match(named[0]) if named else None
        if m:
            files.append({"path": m.group(1), "content": block, "mode": "0755" if script else "0644"})
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: doc_files.py GUIDE.md", file=sys.stderr)
        return 2
    files = doc_files(Path(argv[1]).read_text())
    if not files:
        print(
            f"doc_files.py: {argv[1]}: no code block names its path (# /path as its first line)",
            file=sys.stderr,
        )
        return 1
    json.dump(files, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
