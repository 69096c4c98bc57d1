"""Numbers an API program (or a config file, or a control client) writes that str.isdigit() accepts
but int() does not ('²', other Unicode digits) or that int() refuses for their size (4,301 digits
and more): each gives an error for its own line, and the API program's next line is still read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from control_fakes import real_agent
from test_api_process import (
    RECORDER,
    Harness,
    env_block,
    neighbors,
    nlri,
    process_block,
    recorded,
    run,
    wait_for,
    write_script,
)

from fleetbgp.api import process as proc_mod
from fleetbgp.api.commands import CommandError, parse_command
from fleetbgp.config import ConfigError, parse_text
from fleetbgp.control_client import ControlError
from fleetbgp.settings import AgentSettings

HUGE = "9" * 5000          # past Python's 4,300-digit int() limit
SUPER = "\u00b2"           # '²': isdigit() is True, int() raises
ARABIC_3 = "\u0663"        # '٣': int() reads it as 3

FLOW = "announce flow route { match { destination 10.0.0.0/8; } then { %s; } }"

BAD_LINES = [
    f"neighbor 127.100.0.1 teardown {SUPER}",
    f"neighbor 127.100.0.1 teardown {HUGE}",
    f"neighbor 127.100.0.1 teardown {ARABIC_3}",
    f"neighbor 127.100.0.1 peer-as {SUPER} announce route 100.99.0.0/24 next-hop self",
    f"neighbor 127.100.0.1 local-as {HUGE} announce route 100.99.0.0/24 next-hop self",
    f"neighbor 127.100.0.1 peer-as {ARABIC_3} announce route 100.99.0.0/24 next-hop self",
    f"announce route 100.99.0.0/2{ARABIC_3} next-hop self",
    f"announce flow route destination 10.0.0.0/{SUPER} discard",
    f"announce flow route destination 10.0.0.0/{HUGE} discard",
    f"announce flow route source 2001:db8::/32/{SUPER} discard",
    f"announce flow route source 2001:db8::/32/{HUGE} discard",
    f"announce flow route destination 10.0.0.0/8 destination-port =0x{ARABIC_3} discard",
    FLOW % f"mark {SUPER}",
    FLOW % f"mark {HUGE}",
    FLOW % f"redirect 65000:{SUPER}",
    FLOW % f"redirect {SUPER}:100",
    FLOW % f"redirect 65000:{HUGE}",
    FLOW % f"redirect 192.0.2.1:{HUGE}",
    FLOW % f"redirect {HUGE}L:1",
]


@pytest.mark.parametrize("line", BAD_LINES, ids=range(len(BAD_LINES)))
def test_bad_numbers_are_command_errors_naming_the_token(line: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    message = info.value.message
    assert len(message) < 400, message  # a 5000-digit token is shown shortened
    assert "invalid literal" not in message and "Exceeds the limit" not in message, message
    token = SUPER if SUPER in line else ARABIC_3 if ARABIC_3 in line else "99999"
    assert token in message, message


def test_read_loop_answers_every_bad_line_and_keeps_reading(tmp_path: Path) -> None:
    """Before: the first of these lines raised ValueError out of the read loop, which stopped
    reading the program (its error surfaced only when it exited)."""
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    bad = [line for line in BAD_LINES if "flow" not in line or "destination" in line][:8]
    lines: list[str] = []
    for i, line in enumerate(bad):
        lines += [line, f"announce route 100.10.{i}.0/24 next-hop self"]
    text = process_block("p", script, env_block(RECORD=str(record), COMMANDS="|".join(lines))) + \
        neighbors("api { processes [ p ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            got = await wait_for(lambda: len(recorded(record)) >= len(lines) and recorded(record),
                                 timeout=8, what="an answer to every line")
            assert got == ["error", "done"] * len(bad)
            assert {nlri(f"100.10.{i}.0/24") for i in range(len(bad))} <= set(h.routes())
            assert h.api.status()[0]["errors"] == len(bad)

    run(go)


def test_read_loop_survives_any_exception_from_one_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Defence in depth: a bug (any exception) in parsing or applying one line is that line's error."""
    real_parse = proc_mod.parse_command

    def parse(line: str) -> Any:
        if "explode" in line:
            raise RuntimeError("parser bug")
        if "boom" in line:
            raise TypeError("another bug")
        return real_parse(line)

    monkeypatch.setattr(proc_mod, "parse_command", parse)
    script = write_script(tmp_path, "rec", RECORDER)
    record = tmp_path / "stdin.txt"
    commands = "|".join(["explode", "announce route 100.10.0.0/24 next-hop self", "boom version",
                         "announce route 100.10.1.0/24 next-hop self", "announce route 100.10.2.0/24 next-hop self",
                         "version"])
    text = process_block("hostile", script, env_block(RECORD=str(record), COMMANDS=commands)) + \
        neighbors("api { processes [ hostile ]; }")

    async def go() -> None:
        async with Harness(tmp_path, text) as h:
            real_announce = h.speaker.announce

            def announce(fam: Any, key: bytes, *args: Any, **kw: Any) -> int:
                if key == nlri("100.10.1.0/24"):
                    raise KeyError("apply bug")
                return real_announce(fam, key, *args, **kw)

            h.speaker.announce = announce  # type: ignore[method-assign]
            got = await wait_for(lambda: len(recorded(record)) >= 7 and recorded(record), timeout=8,
                                 what="answers")
            version = "fleetbgp " + __import__("fleetbgp").__version__
            assert got[:7] == ["error", "done", "error", "error", "done", version, "done"]
            assert {nlri("100.10.0.0/24"), nlri("100.10.2.0/24")} <= set(h.routes())

    with caplog.at_level(logging.WARNING, logger="fleetbgp.api"):
        run(go)
    messages = [r.getMessage() for r in caplog.records]
    assert any("process hostile line 1:" in m and "parser bug" in m for m in messages), messages
    assert any("process hostile line 3:" in m and "another bug" in m for m in messages), messages
    assert any("process hostile line 4:" in m and "apply bug" in m for m in messages), messages


# -- the same numbers in the config file -------------------------------------------------------------

def config_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "f.conf")
    return [str(d) for d in info.value.diagnostics]


def flow_config(match: str, then: str = "discard;") -> str:
    return ("neighbor 192.0.2.1 {\n local-as 65001;\n peer-as 65000;\n router-id 192.0.2.2;\n"
            " family { ipv4 flow; ipv6 flow; }\n"
            f" flow {{\n  route r {{\n   match {{ {match} }}\n   then {{ {then} }}\n  }}\n }}\n}}\n")


@pytest.mark.parametrize(("match", "then", "token"), [
    (f"destination 10.0.0.0/{SUPER};", "discard;", SUPER),
    (f"destination 10.0.0.0/{HUGE};", "discard;", "99999"),
    (f"source 2001:db8::/32/{SUPER};", "discard;", SUPER),
    (f"source 2001:db8::/32/{HUGE};", "discard;", "99999"),
    ("destination 10.0.0.0/8;", f"mark {SUPER};", SUPER),
    ("destination 10.0.0.0/8;", f"mark {HUGE};", "99999"),
    ("destination 10.0.0.0/8;", f"redirect 65000:{SUPER};", SUPER),
    ("destination 10.0.0.0/8;", f"redirect 65000:{HUGE};", "99999"),
])
def test_config_flow_block_with_bad_numbers_is_a_config_error(match: str, then: str, token: str) -> None:
    errs = config_errors(flow_config(match, then))
    assert len(errs) == 1, errs
    line = 9 if match.startswith("destination 10.0.0.0/8") else 8
    assert errs[0].startswith(f"f.conf:{line}:"), errs
    assert token in errs[0] and len(errs[0]) < 400, errs


def test_config_check_tcp_port_with_huge_number_is_a_config_error() -> None:
    errs = config_errors(f"healthcheck h {{\n ip 100.10.0.1;\n check tcp 127.0.0.1:{HUGE};\n}}\n")
    assert len(errs) == 1 and errs[0].startswith("f.conf:3:"), errs
    assert "port" in errs[0] and len(errs[0]) < 400, errs


# -- the JSON command path: the control socket -----------------------------------------------------

CONF = """\
neighbor 192.0.2.1 {
    local-as 65001;
    peer-as 65000;
    router-id 192.0.2.2;
    local-address 192.0.2.2;
    family { ipv4 unicast; ipv4 flow; ipv6 flow; }
}
"""


@pytest.fixture
def agent(tmp_path: Path):
    with real_agent(CONF, tmp_path) as a:
        yield a


WEB = {"destination": "192.0.2.10/32"}


@pytest.mark.parametrize(("args", "code", "token"), [
    ({"name": "x", "match": {"destination": f"10.0.0.0/{SUPER}"}}, "invalid_flow", SUPER),
    ({"name": "x", "match": {"source": f"2001:db8::/32/{SUPER}"}, "family": "ipv6"}, "invalid_flow", SUPER),
    ({"name": "x", "match": WEB, "then": {"mark": SUPER}}, "invalid_flow", SUPER),
    ({"name": "x", "match": WEB, "then": {"redirect": f"65000:{HUGE}"}}, "invalid_flow", "99999"),
    ({"name": "x", "match": WEB, "then": {"rate-limit": 10 ** 400}}, "invalid_flow", "rate"),
    ({"name": "x", "match": WEB, "then": {"discard": True}, "expires_after": 10 ** 400}, "invalid_flow",
     "expires_after"),
    ({"name": "x", "match": {"destination-port": 10 ** 4000, **WEB}}, "invalid_flow", "10000"),
])
def test_control_flow_with_bad_numbers_gives_an_error_reply(agent: Any, args: dict[str, Any], code: str,
                                                            token: str) -> None:
    with pytest.raises(ControlError) as info:
        agent.client.call_args("flow_announce", args)
    assert info.value.code == code, info.value
    assert token in info.value.message and "invalid literal" not in info.value.message
    assert len(info.value.message) < 400, info.value.message
    # the connection and the agent are fine: the next request works
    assert agent.client.call("flow_announce", name="ok", match=WEB, then={"discard": True})["changed"]


@pytest.mark.parametrize("args", [
    {"route": f"100.10.0.0/{SUPER} next-hop self"},
    {"route": f"100.10.0.0/24 next-hop self med {HUGE}"},
    {"prefix": "100.10.0.0/24", "next_hop": "self", "med": 10 ** 30},
    {"prefix": "100.10.0.0/24", "next_hop": "self", "local_preference": SUPER},
    {"prefix": "100.10.0.0/24", "next_hop": "self", "as_path": [10 ** 4000]},
    {"prefix": f"100.10.0.0/2{ARABIC_3}", "next_hop": "self"},
])
def test_control_routes_with_bad_numbers_give_an_error_reply(agent: Any, args: dict[str, Any]) -> None:
    with pytest.raises(ControlError) as info:
        agent.client.call_args("announce", args)
    assert info.value.code == "invalid_route", info.value
    assert agent.client.call("announce", route="100.10.9.0/24 next-hop self")["routes"] == 1


def test_config_seconds_refuse_non_ascii_digits() -> None:
    """`\\d` matches '٣' and float() reads it as 3: an interval nobody can see in the file."""
    errs = config_errors(f"healthcheck h {{\n ip 100.10.0.1;\n check tcp 127.0.0.1:80;\n interval {ARABIC_3};\n}}\n")
    assert len(errs) == 1 and errs[0].startswith("f.conf:4:11: interval"), errs


@pytest.mark.parametrize("status", [b"\xb200", b"9" * 5000])
def test_http_check_reads_a_hostile_status_code_as_not_http(status: bytes) -> None:
    """The status line is read as latin-1, where b'\\xb2' is '²'; int() of it raised out of the check."""
    import asyncio
    import socket
    import threading

    from fleetbgp.health.checks import http_check

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 " + status + b" OK\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        result = asyncio.run(http_check(f"http://127.0.0.1:{port}/", 2))
    finally:
        srv.close()
    assert not result.ok and "not an HTTP response" in result.text


@pytest.mark.parametrize("group", [SUPER, HUGE])
def test_control_group_that_is_no_number_is_a_missing_group(group: str) -> None:
    """A group name that isdigit() but int() refuses made the control socket (and the agent) fail
    to start; it is a group that does not exist, which the socket ignores."""
    from fleetbgp.control import ControlServer as Server

    server = Server(object(), AgentSettings(control_socket="/nonexistent/c.sock", control_group=group))
    assert server._group_id() is None
