"""The stdlib-only control client (fleetbgp.control_client): results, error replies, an agent that
is not there, a broken or silent server, and that the module stays copyable into module_utils."""

from __future__ import annotations

import ast
import contextlib
import json
import socket
import sys
import threading
from pathlib import Path

import pytest
from control_fakes import sample_speaker, served, short_tmpdir

from fleetbgp import control_client
from fleetbgp.control_client import ControlClient, ControlError, ControlUnavailable, call


def test_call_returns_the_result_and_reuses_the_connection():
    with served(sample_speaker()) as (_s, path, _lt), ControlClient(path, timeout=5) as client:
        assert client.call("status")["pid"] == 4242
        first = client._sock
        assert client.call("neighbors", neighbor="192.0.2.1")["neighbors"][0]["address"] == "192.0.2.1"
        assert client._sock is first, "one connection for several calls"
        assert client.call_args("routes", {"limit": 1})["returned"] == 1


def test_error_reply_raises_control_error_with_code_message_details():
    speaker = sample_speaker()
    with served(speaker) as (_s, path, _lt), ControlClient(path, timeout=5) as client:
        with pytest.raises(ControlError) as exc:
            client.call("neighbors", neighbor="203.0.113.9")
        assert exc.value.code == "unknown_neighbor"
        assert "203.0.113.9" in exc.value.message
        assert not isinstance(exc.value, ControlUnavailable)
        with pytest.raises(ControlError) as exc:
            client.call("frobnicate")
        assert exc.value.code == "unknown_command"
        from control_fakes import ReloadResult
        speaker.reload_result = ReloadResult(False, ["f:1:1: bad"], "refused")
        with pytest.raises(ControlError) as exc:
            client.call("reload")
        assert (exc.value.code, exc.value.details) == ("reload_failed", ["f:1:1: bad"])
        assert client.call("status")["pid"] == 4242, "the connection survives error replies"


def test_module_level_call():
    with served(sample_speaker()) as (_s, path, _lt):
        assert call("health", path=path) == {"checks": []}


def test_no_socket_is_unavailable_naming_the_path():
    path = str(short_tmpdir() / "nothing.sock")
    with pytest.raises(ControlUnavailable) as exc:
        ControlClient(path).call("status")
    assert exc.value.code == "unavailable"
    assert path in exc.value.message
    assert "running" in exc.value.message


def test_stale_socket_file_is_unavailable():
    path = str(short_tmpdir() / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    with pytest.raises(ControlUnavailable, match="refused"):
        ControlClient(path).call("status")


def test_permission_denied_is_unavailable(monkeypatch):
    def deny(self, address):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(socket.socket, "connect", deny)
    with pytest.raises(ControlUnavailable, match="group"):
        ControlClient("/run/fleetbgp/control.sock").call("status")


@contextlib.contextmanager
def fake_server(answer):
    """A one-connection server answering each request line with answer(request): bytes to send,
    b"" to hang up, None to stay silent."""
    path = str(short_tmpdir() / "fake.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    stop = threading.Event()

    def serve():
        conn, _ = srv.accept()
        with conn, conn.makefile("rb") as f:
            for line in f:
                out = answer(json.loads(line))
                if out is None:
                    stop.wait(5)
                    return
                if out == b"":
                    return  # hang up
                conn.sendall(out)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path
    finally:
        stop.set()
        srv.close()


def test_reply_to_another_request_is_a_protocol_error():
    with fake_server(lambda req: b'{"v":1,"id":999,"ok":true,"result":1}\n') as path:
        with pytest.raises(ControlError) as exc:
            ControlClient(path, timeout=5).call("status")
        assert exc.value.code == "protocol"


def test_garbage_reply_is_a_protocol_error():
    with fake_server(lambda req: b"hello\n") as path, pytest.raises(ControlError, match="not JSON"):
        ControlClient(path, timeout=5).call("status")


def test_closed_connection_is_a_connection_error():
    def close(req):
        return b""
    with fake_server(close) as path:
        client = ControlClient(path, timeout=5)
        with pytest.raises(ControlError) as exc:
            client.call("status")
        assert exc.value.code == "connection"


def test_silent_server_times_out():
    with fake_server(lambda req: None) as path:
        client = ControlClient(path, timeout=0.3)
        with pytest.raises(ControlError) as exc:
            client.call("status")
        assert exc.value.code == "timeout"
        assert client._sock is None, "a timed-out connection is not reused"


def test_per_call_timeout():
    with fake_server(lambda req: None) as path:
        client = ControlClient(path, timeout=30)
        with pytest.raises(ControlError, match=r"0\.2"):
            client.call_args("reload", {}, timeout=0.2)


def test_request_line_format():
    seen = []

    def answer(req):
        seen.append(req)
        return json.dumps({"v": 1, "id": req["id"], "ok": True, "result": None}).encode() + b"\n"
    with fake_server(answer) as path, ControlClient(path, timeout=5) as client:
        client.call("announce", route="100.10.0.1/32 next-hop self", neighbors=["192.0.2.1"])
        client.call("status")
    assert seen == [
        {"v": 1, "id": 1, "cmd": "announce", "args": {"route": "100.10.0.1/32 next-hop self",
                                                      "neighbors": ["192.0.2.1"]}},
        {"v": 1, "id": 2, "cmd": "status", "args": {}},
    ]


def test_stdlib_only_and_no_fleetbgp_imports():
    """module_utils copies this file verbatim: it may import only the standard library."""
    tree = ast.parse(Path(control_client.__file__).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add((node.module or "").split(".")[0])
    assert modules, "found no imports at all?"
    assert "fleetbgp" not in modules
    not_stdlib = {m for m in modules if m not in sys.stdlib_module_names}
    assert not not_stdlib, f"non-stdlib imports: {not_stdlib}"


def test_runs_standalone_outside_the_package(tmp_path):
    """Copied next to a script (as module_utils are), it imports and works on its own."""
    import subprocess
    copy = tmp_path / "control_client.py"
    copy.write_text(Path(control_client.__file__).read_text())
    with served(sample_speaker()) as (_s, path, _lt):
        out = subprocess.run([sys.executable, "-I", "-c",
                              "import sys; sys.path.insert(0, sys.argv[1]); import control_client as c; "
                              "print(c.ControlClient(sys.argv[2]).call('status')['pid'])",
                              str(tmp_path), path], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4242"
