"""Tokens and statements of the ExaBGP config language.

The text is read line by line with one compiled regular expression. A statement is the words up to
a terminator: `;` ends a statement, `{` opens a block (the words name it), `}` closes one. As in
ExaBGP, a statement ends on its line; two relaxations: a `[ ... ]` list may span lines, and a block's
`{` may stand at the start of the next line. Anything else that runs off the end of a line is a
missing `;`, reported, and the statement is taken as if the `;` were there.

Words are kept as plain strings: a quoted string keeps its quotes (so `"route"` is never the keyword
`route`), and `unquote()` gives its value. Positions are not stored per word: a statement remembers
where its lines start, and the column of a word is found again, by lexing that one line, only when
a message needs it. That keeps 100,000 `route` lines cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import Diagnostic, Location

# Order matters: strings, then punctuation, then a comment (the rest of the line), then a quote that
# opens a string never closed on its line, then a bare word.
TOKEN_RE = re.compile(
    r'"(?:[^"\\]|\\.)*"'
    r"|'(?:[^'\\]|\\.)*'"
    r"|[;{}\[\]()]"
    r"|#.*"
    r"|[\"']"
    r"|[^\s;{}\[\]()#\"']+"
)
_FIND = TOKEN_RE.findall
_ESCAPE_RE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def is_quoted(word: str) -> bool:
    return word[:1] in ('"', "'")


def unquote(word: str) -> str:
    """The value of a word: a quoted string without its quotes and with `\\x` escapes resolved."""
    if len(word) >= 2 and word[0] in ('"', "'") and word[-1] == word[0]:
        inner = word[1:-1]
        if "\\" in inner:
            return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), inner)
        return inner
    return word


def tokenize_line(line: str) -> list[str]:
    """The words of one line, comment dropped. For callers with their own line protocol (API)."""
    toks = _FIND(line)
    if toks and toks[-1][0] == "#":
        toks.pop()
    return toks


def _columns(line: str) -> list[tuple[int, int]]:
    """(1-based column, length) of each token of a line, comment excluded."""
    out = []
    for m in TOKEN_RE.finditer(line):
        if m.group()[0] == "#":
            break
        out.append((m.start() + 1, m.end() - m.start()))
    return out


class Statement:
    """Words up to a terminator: ';', '{' (block opens), '}' (block closes) or '' (end of file).

    segs maps word indexes to lines: (line number, index of the token in that line, first word index
    on that line). Index len(words) is the terminator.
    """

    __slots__ = ("words", "term", "segs")

    def __init__(self, words: list[str], term: str, segs: tuple[tuple[int, int, int], ...]) -> None:
        self.words = words
        self.term = term
        self.segs = segs

    def __repr__(self) -> str:
        return f"Statement({self.words!r}, {self.term!r}, line {self.segs[0][0] if self.segs else '?'})"


class Lexer:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines = text.split("\n")
        self.diagnostics: list[Diagnostic] = []
        self._col_cache: dict[int, list[tuple[int, int]]] = {}

    # -- positions -----------------------------------------------------------------------------

    def _cols(self, lineno: int) -> list[tuple[int, int]]:
        cols = self._col_cache.get(lineno)
        if cols is None:
            if len(self._col_cache) > 256:
                self._col_cache.clear()
            cols = self._col_cache[lineno] = _columns(self.lines[lineno - 1])
        return cols

    def _span(self, stmt: Statement, index: int) -> tuple[int, int, int]:
        """(line, column, length) of word `index` (len(words) = the terminator)."""
        segs = stmt.segs
        if not segs:
            return (len(self.lines), 1, 0)
        seg = segs[0]
        for s in segs:
            if s[2] <= index:
                seg = s
            else:
                break
        lineno, tok0, word0 = seg
        cols = self._cols(lineno)
        k = tok0 + (index - word0)
        if not cols:
            return (lineno, 1, 0)
        if k >= len(cols):
            col, length = cols[-1]
            return (lineno, col + length, 0)
        col, length = cols[k]
        return (lineno, col, length)

    def location(self, stmt: Statement, index: int = 0) -> Location:
        line, col, _length = self._span(stmt, index)
        return Location(self.file, line, col)

    def location_after(self, stmt: Statement, index: int) -> Location:
        line, col, length = self._span(stmt, index)
        return Location(self.file, line, col + length)

    def end_of_file(self) -> Location:
        n = len(self.lines)
        while n > 1 and not self.lines[n - 1].strip():
            n -= 1
        return Location(self.file, n, len(self.lines[n - 1]) + 1 if self.lines else 1)

    # -- statements ----------------------------------------------------------------------------

    def _missing_semicolon(self, stmt: Statement) -> None:
        first = stmt.words[0]
        what = f"the '{first}' statement" if not is_quoted(first) else "this statement"
        loc = self.location_after(stmt, len(stmt.words) - 1)
        self.diagnostics.append(Diagnostic.at(loc, f"missing ';' at the end of {what}"))

    def statements(self) -> Iterator[Statement]:
        words: list[str] = []
        segs: list[tuple[int, int, int]] = []
        bracket = 0
        pending = False  # the statement in `words` ran off the end of its line
        for lineno, line in enumerate(self.lines, 1):
            # Fast path: the common one-statement line (`route ...;`, `local-as 65001;`) with no
            # string, comment, brace or parenthesis: str.split() finds the same words as TOKEN_RE.
            if (not words and ";" in line and "{" not in line and "}" not in line and "#" not in line
                    and '"' not in line and "'" not in line and "(" not in line and ")" not in line
                    and line.count(";") == 1 and line.rstrip().endswith(";")):
                toks = line.replace("[", " [ ").replace("]", " ] ").replace(";", " ").split()
                if toks:
                    yield Statement(toks, ";", ((lineno, 0, 0),))
                continue
            toks = _FIND(line)
            if not toks:
                continue
            if toks[-1][0] == "#":
                toks.pop()
                if not toks:
                    continue
            broken = False
            for ti, tok in enumerate(toks):
                if pending:
                    pending = False
                    if tok != "{":
                        stmt = Statement(words, ";", tuple(segs))
                        self._missing_semicolon(stmt)
                        yield stmt
                        words, segs, bracket = [], [], 0
                if not segs or segs[-1][0] != lineno:
                    segs.append((lineno, ti, len(words)))
                c = tok[0]
                if c == ";":
                    if words:
                        yield Statement(words, ";", tuple(segs))
                    words, segs, bracket = [], [], 0
                elif c == "{":
                    yield Statement(words, "{", tuple(segs))
                    words, segs, bracket = [], [], 0
                elif c == "}":
                    if words:
                        stmt = Statement(words, ";", tuple(segs))
                        self._missing_semicolon(stmt)
                        yield stmt
                    yield Statement([], "}", ((lineno, ti, 0),))
                    words, segs, bracket = [], [], 0
                elif tok == '"' or tok == "'":
                    col = self._cols(lineno)[ti][0]
                    self.diagnostics.append(Diagnostic(
                        self.file, lineno, col, f"string opened with {c} is not closed on this line"))
                    broken = True
                    break
                else:
                    if c == "[":
                        bracket += 1
                    elif c == "]" and bracket:
                        bracket -= 1
                    words.append(tok)
            if broken:
                words, segs, bracket = [], [], 0
            elif words and not bracket:
                pending = True
        if words:
            stmt = Statement(words, ";", tuple(segs))
            self._missing_semicolon(stmt)
            yield stmt
