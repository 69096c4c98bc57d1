"""`fleetbgp healthcheck` run as a real subprocess, as the agent runs it: its stdout lines read,
acks written to its stdin, against a TCP service the test starts and stops on 127.0.0.1. And
ExaBGP's own healthcheck program, run side by side on the same scripted check results, as the
oracle for what is announced when."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleetbgp.health import exabgp_program as program

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "agent" / "src"), "PYTHONUNBUFFERED": "1"}
FAST = ["--interval", "0.1", "--fast-interval", "0.05", "--no-ip-setup"]


class Service:
    def __init__(self) -> None:
        self.port = 0
        self.sock: socket.socket | None = None
        self.start()

    def start(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port, self.sock = s.getsockname()[1], s

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def probe(self) -> str:
        """A check command that connects to the service (python: present wherever the tests run)."""
        code = f"import socket; socket.create_connection(('127.0.0.1', {self.port}), 1).close()"
        return f"{sys.executable} -c \"{code}\""


@pytest.fixture
def service():
    s = Service()
    yield s
    s.stop()


class Prog:
    """A healthcheck program with its stdout read line by line by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or ENV)
        self.lines: queue.Queue[str] = queue.Queue()
        self.all: list[str] = []
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.all.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def expect(self, n: int = 1, timeout: float = 10) -> list[str]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {n} line(s), got {out}; stderr:\n" + "\n".join(self.err[-20:]))
            try:
                out.append(self.lines.get(timeout=left))
            except queue.Empty:
                continue
        return out

    def nothing(self, seconds: float) -> None:
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected line: {line!r}")

    def ack(self, text: str = "done") -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin,):
            try:
                f.close()
            except OSError:
                pass


def fleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetbgp", "healthcheck", *args]


@pytest.fixture
def progs():
    made: list[Prog] = []

    def make(argv, env=None) -> Prog:
        p = Prog(argv, env)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# -- end to end against a TCP service ------------------------------------------------------------

def test_up_down_up_metrics(service, progs):
    p = progs(fleet("--cmd", service.probe(), "--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32",
                    "--rise", "2", "--fall", "2", "--no-ack", "--community", "65000:100", *FAST))
    assert p.expect(2) == [
        "announce route 100.10.0.100/32 next-hop self med 100 community [ 65000:100 ]",
        "announce route 100.10.0.101/32 next-hop self med 101 community [ 65000:100 ]"]
    p.nothing(0.5)       # UP and staying UP: not a line more (ExaBGP without --debounce repeats)
    service.stop()
    assert p.expect(2) == [
        "announce route 100.10.0.100/32 next-hop self med 1000 community [ 65000:100 ]",
        "announce route 100.10.0.101/32 next-hop self med 1001 community [ 65000:100 ]"]
    service.start()
    assert p.expect(2)[0] == "announce route 100.10.0.100/32 next-hop self med 100 community [ 65000:100 ]"
    assert p.stop() == 0
    assert p.all[-2:] == ["withdraw route 100.10.0.100/32 next-hop self",
                          "withdraw route 100.10.0.101/32 next-hop self"]
    assert any("RISING -> UP" in line for line in p.err)


def test_withdraw_on_down_neighbors_and_attributes(service, progs):
    p = progs(fleet("--cmd", service.probe(), "--ip", "100.10.0.100/32", "--rise", "1", "--fall", "1",
                    "--no-ack", "--withdraw-on-down", "--next-hop", "192.0.2.2", "--neighbor", "192.0.2.1",
                    "--neighbor", "192.0.2.5", "--local-preference", "200", "--as-path", "65001 65001",
                    "--large-community", "65000:1:1", "--extended-community", "target:65000:1", *FAST))
    assert p.expect() == ["neighbor 192.0.2.1, neighbor 192.0.2.5 announce route 100.10.0.100/32 next-hop "
                          "192.0.2.2 med 100 local-preference 200 extended-community [ target:65000:1 ] "
                          "large-community [ 65000:1:1 ] as-path [ 65001 65001 ]"]
    service.stop()
    assert p.expect() == ["neighbor 192.0.2.1, neighbor 192.0.2.5 withdraw route 100.10.0.100/32 next-hop "
                          "192.0.2.2"]


def test_fall_and_rise_are_counted(service, progs, tmp_path):
    """The number of checks between the service change and the line is `fall` / `rise`."""
    count = tmp_path / "count"
    cmd = f"echo x >> {count}; {service.probe()}"
    p = progs(fleet("--cmd", cmd, "--ip", "100.10.0.100/32", "--rise", "3", "--fall", "4", "--no-ack",
                    "--withdraw-on-down", *FAST))
    p.expect()
    assert len(count.read_text().splitlines()) == 3
    service.stop()
    before = len(count.read_text().splitlines())
    assert p.expect()[0].startswith("withdraw route")
    assert len(count.read_text().splitlines()) - before == 4


def test_acks_are_waited_for(progs):
    p = progs(fleet("--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32", "--rise", "1",
                    "--ack-timeout", "5", *FAST))
    assert p.expect()[0].startswith("announce route 100.10.0.100/32")
    p.nothing(0.7)          # no ack yet: the second line waits
    p.ack("done")
    assert p.expect()[0].startswith("announce route 100.10.0.101/32")
    p.ack('{"answer": "done"}')   # the JSON form counts too
    assert p.stop() == 0


def test_no_ack_from_the_agent_does_not_block(progs):
    """An agent with acks off never answers: after --ack-timeout the program stops waiting."""
    p = progs(fleet("--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32", "--rise", "1",
                    "--ack-timeout", "0.5", *FAST))
    start = time.monotonic()
    assert len(p.expect(2, timeout=5)) == 2
    assert time.monotonic() - start < 3
    time.sleep(0.2)
    assert any("no ack from the agent" in line for line in p.err)


def test_error_ack_is_logged_and_events_are_skipped(progs):
    p = progs(fleet("--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32", "--rise", "1", *FAST))
    p.expect()
    p.ack("neighbor 192.0.2.1 up")        # an event, not an ack
    p.ack("error")
    p.expect()
    p.ack("done")
    time.sleep(0.3)
    assert any("the agent refused: announce route 100.10.0.100/32" in line for line in p.err)


def test_shutdown_ack_ends_the_program(progs):
    p = progs(fleet("--ip", "100.10.0.100/32", "--rise", "1", *FAST))
    p.expect()
    p.ack("shutdown")
    assert p.proc.wait(5) == 0


def test_stdin_closed_means_no_acks(progs):
    p = progs(fleet("--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32", "--rise", "1", *FAST))
    p.proc.stdin.close()
    assert len(p.expect(2, timeout=5)) == 2


def test_sigterm_withdraws_everything_even_when_down(progs):
    p = progs(fleet("--cmd", "false", "--ip", "100.10.0.100/32", "--fall", "1", "--no-ack", *FAST))
    assert p.expect() == ["announce route 100.10.0.100/32 next-hop self med 1000"]
    assert p.stop() == 0
    assert p.all[-1] == "withdraw route 100.10.0.100/32 next-hop self"


def test_disable_file(progs, tmp_path):
    flag = tmp_path / "maintenance"
    p = progs(fleet("--ip", "100.10.0.100/32", "--rise", "1", "--no-ack", "--disable", str(flag),
                    "--disabled-community", "65000:666", "--community", "65000:1", "--interval", "30",
                    "--fast-interval", "0.05", "--no-ip-setup"))
    assert p.expect() == ["announce route 100.10.0.100/32 next-hop self med 100 community [ 65000:1 ]"]
    flag.touch()
    start = time.monotonic()
    assert p.expect(timeout=5) == ["announce route 100.10.0.100/32 next-hop self med 500 community [ 65000:666 ]"]
    assert time.monotonic() - start < 3, "the disable file must not wait for the 30 s interval"
    flag.unlink()
    assert p.expect(timeout=5) == ["announce route 100.10.0.100/32 next-hop self med 100 community [ 65000:1 ]"]


def test_hooks_run_with_state(progs, tmp_path):
    log = tmp_path / "hooks"
    p = progs(fleet("--cmd", f"test ! -e {tmp_path}/down", "--ip", "100.10.0.100/32", "--rise", "1",
                    "--fall", "1", "--no-ack", "--withdraw-on-down",
                    "--up-execute", f"echo up $STATE >> {log}", "--down-execute", f"echo down $STATE >> {log}",
                    "--execute", f"echo any $STATE >> {log}", *FAST))
    p.expect()
    (tmp_path / "down").touch()
    p.expect()
    time.sleep(0.3)
    assert log.read_text().splitlines() == ["up UP", "any UP", "down DOWN", "any DOWN"]


def test_interval_zero_exits_after_the_first_announcement(progs):
    p = progs(fleet("--ip", "100.10.0.100/32", "--rise", "2", "--no-ack", "--interval", "0",
                    "--fast-interval", "0.05", "--no-ip-setup"))
    assert p.expect() == ["announce route 100.10.0.100/32 next-hop self med 100"]
    assert p.proc.wait(5) == 0
    assert p.all == ["announce route 100.10.0.100/32 next-hop self med 100"]   # END: no withdraw


def test_config_file(progs, tmp_path):
    conf = tmp_path / "hc.conf"
    conf.write_text("# ExaBGP's healthcheck config format\n"
                    "name = web\n"
                    "ip = 100.10.0.100/32\n"
                    "ip = 100.10.0.101/32\n"
                    "rise = 1\n"
                    "up-metric = 7\n"
                    "no-ack\n"
                    "\n"
                    "command = true\n")
    p = progs(fleet("--config", str(conf), "--increase", "10", *FAST))
    assert p.expect(2) == ["announce route 100.10.0.100/32 next-hop self med 7",
                           "announce route 100.10.0.101/32 next-hop self med 17"]
    time.sleep(0.2)
    assert any("[healthcheck-web]" in line for line in p.err)


def test_usage_errors_exit_2():
    for args in (["--ip", "10.0.0.1/24"], ["--ip", "10.0.0.1", "--community", "65000:x"],
                 ["--ip", "10.0.0.1", "--next-hop", "2001:db8::1"], ["--rise", "x"],
                 ["--config", "/nonexistent/file"], ["--ip", "10.0.0.1", "--as-path", "abc"]):
        cp = subprocess.run(fleet(*args), capture_output=True, text=True, env=ENV, timeout=20)
        assert cp.returncode == 2, (args, cp.stderr)
        assert "error" in cp.stderr


def test_help_lists_exabgp_options():
    cp = subprocess.run(fleet("--help"), capture_output=True, text=True, env=ENV, timeout=20)
    assert cp.returncode == 0
    for opt in ("--cmd", "--interval", "--fast-interval", "--timeout", "--rise", "--fall", "--disable",
                "--ip", "--next-hop", "--withdraw-on-down", "--up-metric", "--down-metric",
                "--disabled-metric", "--increase", "--community", "--disabled-community",
                "--large-community", "--extended-community", "--as-path", "--local-preference",
                "--path-id", "--neighbor", "--execute", "--up-execute", "--down-execute",
                "--disabled-execute", "--no-ack", "--config", "--debounce", "--name", "--silent",
                "--syslog-facility", "--debug"):
        assert opt in cp.stdout, opt


def test_check_timeout_counts_as_failure(progs):
    p = progs(fleet("--cmd", "sleep 10", "--timeout", "0.3", "--ip", "100.10.0.100/32", "--fall", "1",
                    "--no-ack", *FAST))
    start = time.monotonic()
    assert p.expect() == ["announce route 100.10.0.100/32 next-hop self med 1000"]
    assert time.monotonic() - start < 5


# -- in-process pieces ------------------------------------------------------------------------------

def test_config_file_args(tmp_path):
    conf = tmp_path / "c"
    conf.write_text("debug\n  # comment\nname = haproxy\ncommand = curl -sf http://127.0.0.1/x?a=b\n")
    assert program.config_file_args(str(conf)) == ["--debug", "--name", "haproxy", "--command",
                                                "curl -sf http://127.0.0.1/x?a=b"]


def test_command_line_overrides_config_file(tmp_path):
    conf = tmp_path / "c"
    conf.write_text("rise = 5\nip = 100.10.0.1/32\n")
    o = program.parse_args(["--config", str(conf), "--rise", "2", "--ip", "100.10.0.2/32"])
    assert o.rise == 2 and [str(i) for i in o.ips] == ["100.10.0.1/32", "100.10.0.2/32"]


def test_prepare_ips_deaggregate_and_start_ip():
    o = program.parse_args(["--ip", "100.10.0.0/30", "--deaggregate-networks", "--start-ip", "1"])
    assert program.prepare_ips(o)
    assert [str(i) for i in o.ips] == ["100.10.0.1/32", "100.10.0.2/32", "100.10.0.3/32", "100.10.0.0/32"]


def test_neighbor_star_means_all():
    o = program.parse_args(["--ip", "100.10.0.1/32", "--neighbor", "*"])
    program.prepare_ips(o)
    a = program.Announcer(o, sys.stdout, None)
    assert a.line("100.10.0.1/32", program.State.UP, 5) == "announce route 100.10.0.1/32 next-hop self med 5"


def test_fleetbgp_cli_dispatches_healthcheck(monkeypatch):
    from fleetbgp import cli

    seen = {}

    def fake_main(args):
        seen["args"] = args
        return 0

    monkeypatch.setattr(program, "main", fake_main)
    assert cli.main(["healthcheck", "--cmd", "true", "-i", "2", "--help"]) == 0
    assert seen["args"] == ["--cmd", "true", "-i", "2", "--help"]


# -- ExaBGP's healthcheck as the oracle ---------------------------------------------------------------

EXABGP_HEALTHCHECK = Path(sys.executable).parent / "exabgp-healthcheck"

SCRIPT = """#!/bin/sh
# Answers the N-th check with the N-th character of the sequence: + ok, anything else fails.
n=$(cat "$1" 2>/dev/null || echo 0)
echo $((n + 1)) > "$1.tmp" && mv "$1.tmp" "$1"
c=$(printf '%s' "$2" | cut -c$((n + 1)))
[ -z "$c" ] && c=+
[ "$c" = "+" ]
"""


def normalise(lines: list[str]) -> list[str]:
    """ExaBGP writes `neighbor * announce ...` and, with --debounce, repeats identical routes on
    every change back to a state; fleetbgp writes `announce ...` and sends only what changed."""
    out: list[str] = []
    for line in lines:
        line = line.removeprefix("neighbor * ")
        if line not in out[-2:]:
            out.append(line)
    return out


@pytest.mark.skipif(not EXABGP_HEALTHCHECK.exists(), reason="exabgp (requirements-dev) is not installed")
@pytest.mark.parametrize(("sequence", "extra"), [
    ("+++---+-+----+++++", ["--rise", "3", "--fall", "3"]),
    ("-+-++--+++---++", ["--rise", "2", "--fall", "2", "--withdraw-on-down"]),
    ("+-+-+--++", ["--rise", "1", "--fall", "1", "--community", "65000:1", "--disabled-community", "65000:2",
                   "--up-metric", "10", "--down-metric", "20", "--increase", "5"]),
])
def test_same_announcements_as_exabgp(tmp_path, progs, sequence, extra):
    script = tmp_path / "check.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    common = ["--ip", "100.10.0.100/32", "--ip", "100.10.0.101/32", "--no-ack", "--interval", "0.05",
              "--fast-interval", "0.05", "--no-ip-setup", *extra]
    runs = {}
    for name, argv in (("exabgp", [str(EXABGP_HEALTHCHECK), "--no-syslog", "--debounce"]),
                       ("fleetbgp", fleet())):
        counter = tmp_path / f"{name}.count"
        p = progs([*argv, *common, "--cmd", f"{script} {counter} '{sequence}'"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = counter.read_text().strip() if counter.exists() else ""
            if text.isdigit() and int(text) >= len(sequence) + 4:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{name} did not run its checks: " + "\n".join(p.err[-10:]))
        p.stop(signal.SIGTERM)
        runs[name] = p.all
    assert normalise(runs["fleetbgp"]) == normalise(runs["exabgp"])
    assert normalise(runs["fleetbgp"]) == runs["fleetbgp"], "fleetbgp repeated routes it had sent"
    assert len(runs["fleetbgp"]) >= 4, "the sequence should change the routes more than once"
