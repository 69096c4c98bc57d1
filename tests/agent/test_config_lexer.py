"""Tokens, statements and positions (config/lexer.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetbgp.config.lexer import TOKEN_RE, Lexer, is_quoted, tokenize_line, unquote


def stmts(text: str) -> list[tuple[list[str], str]]:
    return [(s.words, s.term) for s in Lexer(text, "f").statements()]


def test_tokens():
    assert tokenize_line("route 10.0.0.0/24 next-hop self community [65000:1 no-export];") == [
        "route", "10.0.0.0/24", "next-hop", "self", "community", "[", "65000:1", "no-export", "]", ";"]
    assert tokenize_line("md5-password env['X']; # comment ; {") == [
        "md5-password", "env", "[", "'X'", "]", ";"]
    assert tokenize_line('description "a # b; {c}";') == ["description", '"a # b; {c}"', ";"]
    assert tokenize_line("aggregator (65001:1.2.3.4)") == ["aggregator", "(", "65001:1.2.3.4", ")"]


def test_unquote_and_is_quoted():
    assert unquote('"a \\"b\\" \\\\ \\n"') == 'a "b" \\ \n'
    assert unquote("'x'") == "x" and unquote("x") == "x" and unquote('"') == '"'
    assert is_quoted("'x'") and is_quoted('"x"') and not is_quoted("x")


def test_statements_and_terminators():
    assert stmts("neighbor 1.2.3.4 {\n local-as 1; peer-as 2;\n}\n") == [
        (["neighbor", "1.2.3.4"], "{"), (["local-as", "1"], ";"), (["peer-as", "2"], ";"), ([], "}")]


def test_empty_statements_are_skipped():
    assert stmts(";;\n ; \n") == []


def test_brace_on_next_line_continues_the_statement():
    lex = Lexer("neighbor 1.2.3.4\n\n# c\n{\n}", "f")
    assert [(s.words, s.term) for s in lex.statements()] == [(["neighbor", "1.2.3.4"], "{"), ([], "}")]
    assert lex.diagnostics == []


def test_missing_semicolon_is_reported_and_recovered():
    lex = Lexer("hold-time 90\npassive;\n", "f")
    assert [(s.words, s.term) for s in lex.statements()] == [(["hold-time", "90"], ";"), (["passive"], ";")]
    assert [str(d) for d in lex.diagnostics] == ["f:1:13: missing ';' at the end of the 'hold-time' statement"]


def test_list_spans_lines():
    lex = Lexer("community [\n 1:1 # one\n 2:2\n];", "f")
    (s,) = list(lex.statements())
    assert s.words == ["community", "[", "1:1", "2:2", "]"]
    assert [lex.location(s, i)[1:] for i in range(len(s.words) + 1)] == [
        (1, 1), (1, 11), (2, 2), (3, 2), (4, 1), (4, 2)]


def test_locations_on_a_shared_line():
    lex = Lexer("  family { ipv4 unicast; ipv6 unicast; }", "f")
    out = list(lex.statements())
    assert [lex.location(s, 0)[1:] for s in out] == [(1, 3), (1, 12), (1, 26), (1, 40)]
    assert lex.location_after(out[1], 1)[1:] == (1, 24)


def test_unterminated_string_drops_the_line():
    lex = Lexer('description "oops;\npassive;', "f")
    assert [(s.words, s.term) for s in lex.statements()] == [(["passive"], ";")]
    assert [str(d) for d in lex.diagnostics] == ['f:1:13: string opened with " is not closed on this line']


@settings(max_examples=300)
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="{}#\"'();\n"), min_size=1, max_size=12),
                min_size=1, max_size=12))
def test_fast_path_finds_the_same_words_as_the_regex(parts):
    line = " ".join(parts) + ";"
    fast = [(s.words, s.segs) for s in Lexer(line, "f").statements()]
    slow = [t for t in TOKEN_RE.findall(line) if t != ";"]
    if slow:
        assert fast == [(slow, ((1, 0, 0),))]
    else:
        assert fast == []
