"""The README's "Using the collection on a real fleet" section, read as a script (tests/e2e/test_real_fleet.py).

The structure this parser relies on (a README edit that keeps it keeps the test working; one that
breaks the path fails the test, which is the point):

- The section is the level-2 heading whose text contains "real fleet" (case-insensitive), up to the
  next level-2 heading.
- Commands: fenced blocks tagged ```sh (or bash, shell, console). One command per line; a trailing
  `\\` continues a line; a leading `$ ` prompt is dropped; `# ...` after a command (outside quotes) is
  a comment; a line that starts with `#` is a note attached to the command before it (the vault
  block lists the vault variables that way: `#   vault_NAME: "..."`); `<<EOF` / `<<'EOF'` heredocs
  are kept with their body. Commands run in the README's order, in one shell working directory
  (`cd DIR` changes it).
- Files: fenced blocks tagged ```yaml (yml, ini, cfg, toml, conf) whose first line is a comment
  naming a path, `# inventory/hosts.yml` or `; ansible.cfg`; the block is that file's content.
  Blocks without such a line are examples, not files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SECTION_RE = re.compile(r"^##\s+(?P<title>.*real fleet.*)$", re.IGNORECASE | re.MULTILINE)
FENCE_RE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
SHELL_LANGS = {"sh", "bash", "shell", "console"}
FILE_LANGS = {"yaml", "yml", "ini", "cfg", "toml", "conf"}
PATH_LINE_RE = re.compile(r"^[#;]\s*(?P<path>~?[\w./-]*\.(?:ya?ml|cfg|ini|toml|conf|txt))\s*$")
HEREDOC_RE = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")


class ReadmeError(ValueError):
    """The README section is not there or not in the shape described in this module's docstring."""


@dataclass
class Command:
    text: str  # the command as a shell would read it (comment stripped; heredoc body included)
    notes: list[str] = field(default_factory=list)  # comment lines that follow it in its block

    @property
    def argv0(self) -> str:
        return self.text.split(None, 1)[0] if self.text.strip() else ""


@dataclass
class RealFleetSection:
    title: str
    files: dict[str, str]  # path as written in the README -> content
    commands: list[Command]


def strip_comment(line: str) -> str:
    """`cmd arg  # comment` -> `cmd arg`; a `#` inside quotes or inside a word stays."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def section_text(readme: str) -> tuple[str, str]:
    match = SECTION_RE.search(readme)
    if match is None:
        raise ReadmeError('README.md has no "## ... real fleet ..." section')
    start = match.end()
    nxt = re.compile(r"^##\s", re.MULTILINE).search(readme, start)
    return match.group("title").strip(), readme[start : nxt.start() if nxt else len(readme)]


def shell_commands(body: str) -> list[Command]:
    commands: list[Command] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if commands:
                commands[-1].notes.append(stripped)
            continue
        text = strip_comment(re.sub(r"^\$\s+", "", stripped))
        while text.endswith("\\") and i < len(lines):
            text = text[:-1].rstrip() + " " + strip_comment(lines[i].strip())
            i += 1
        heredoc = HEREDOC_RE.search(text)
        if heredoc:
            word, doc = heredoc.group("word"), []
            while i < len(lines) and lines[i].strip() != word:
                doc.append(lines[i])
                i += 1
            if i == len(lines):
                raise ReadmeError(f"heredoc <<{word} in {text!r} has no closing {word} line")
            i += 1
            text = "\n".join([text, *doc, word])
        commands.append(Command(text))
    return commands


def parse(readme: str) -> RealFleetSection:
    title, text = section_text(readme)
    files: dict[str, str] = {}
    commands: list[Command] = []
    for block in FENCE_RE.finditer(text):
        lang, body = block.group("lang").lower(), block.group("body")
        if lang in SHELL_LANGS:
            commands.extend(shell_commands(body))
        elif lang in FILE_LANGS:
            first = body.split("\n", 1)[0]
            path = PATH_LINE_RE.match(first.strip())
            if path:
                files[path.group("path")] = body
    if not commands:
        raise ReadmeError(f'section "{title}" has no ```sh block with commands')
    if not files:
        raise ReadmeError(f'section "{title}" has no file block (```yaml whose first line is "# PATH")')
    return RealFleetSection(title, files, commands)
