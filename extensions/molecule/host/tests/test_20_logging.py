"""fleet.bgp.logging on the bgp_server: the agent's JSON lines in /var/log/fleetbgp/fleetbgp.log through
journald and rsyslog, rotation with the agent writing on into the new file, forwarding over TCP, UDP and RELP."""

from __future__ import annotations

import json

import pytest

from conftest import wait_until

LOG = "/var/log/fleetbgp/fleetbgp.log"
DROPIN = "/etc/systemd/system/fleetbgp.service.d/50-logging.conf"
ROTATE = "/etc/logrotate.d/fleetbgp"
REMOTE_DIR = "/var/log/remote"  # inventory/group_vars/all.yml: molecule_remote_dir


def json_lines(text: str, *, strict: bool = True) -> list[dict]:
    """The agent's lines of a log file, parsed: each must be one JSON object. Not strict: text lines
    before the first JSON line are skipped (the agent ran with text logs until the logging role's
    first run switched it to JSON and restarted it: its last text lines are in the first file)."""
    out: list[dict] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            if not strict and not out:
                continue
            raise AssertionError(f"line {n} is not JSON ({exc}): {line!r}") from exc
        fields = {"time", "host", "event", "level", "logger", "message"}
        assert isinstance(obj, dict) and fields <= obj.keys(), line
        out.append(obj)
    return out


def read_log(server, path: str = LOG, *, strict: bool = True) -> list[dict]:
    result = server.run(f"zcat -f {path}")
    return json_lines(result.stdout, strict=strict) if result.rc == 0 else []


def read_all(server) -> list[dict]:
    """The agent's lines in the file and in its rotated copies (a verify run more than once finds the
    first lines rotated by the earlier runs' rotation test)."""
    paths = server.run(f"ls {LOG} {LOG}.*").stdout.split()
    return [o for path in paths for o in read_log(server, path, strict=False)]


def test_services(server):
    assert server.service("rsyslog").is_running
    assert server.service("fleetbgp").is_running
    assert server.service("logrotate.timer").is_enabled


def test_dropin_sets_json_format(server):
    assert server.file(DROPIN).exists
    env = server.check_output("systemctl show fleetbgp.service -p Environment")
    assert "FLEETBGP_LOG_FORMAT=json" in env
    assert server.check_output("systemctl show fleetbgp.service -p SyslogIdentifier --value") == "fleetbgp"


def test_agent_messages_in_the_file(server):
    """Start-up and session lines of the agent, written by rsyslog from what journald forwarded."""

    def session_line():
        return [o for o in read_all(server) if "session established" in o["message"]]

    assert wait_until(session_line, 30), server.run(f"tail -5 {LOG}; journalctl -u fleetbgp -n 5").stdout
    lines = read_all(server)
    assert any(o["message"].startswith("listening on") for o in lines), lines[:5]
    assert all(o.get("peer") for o in session_line()), "JSON lines about a peer carry its address"
    assert {o["event"] for o in session_line()} == {"session_established"}, session_line()
    hostname = server.check_output("hostname")
    assert {o["host"] for o in lines} == {hostname}, "every line names the host, in file mode too"


def test_log_file_owner_and_mode(server):
    f = server.file(LOG)
    assert (f.user, f.group, f.mode) == ("fleetbgp", "fleetbgp", 0o640)


def test_logrotate_policy(server):
    conf = server.file(ROTATE).content_string
    for word in ("daily", "rotate 30", "compress", "delaycompress", "create 0640 fleetbgp fleetbgp",
                 "postrotate", "systemctl kill --signal=HUP rsyslog.service"):
        assert word in conf, word
    result = server.run(f"logrotate -d {ROTATE}")
    assert result.rc == 0, result.stderr


def test_rotation_and_the_agent_writes_on(server):
    """logrotate -f moves the file away; rsyslog, told by postrotate, writes the agent's next line (a
    reload) into a new file created 0640 fleetbgp:fleetbgp."""
    before = read_log(server, strict=False)
    assert before, "the log is empty before the rotation"
    result = server.run(f"logrotate -f {ROTATE}")
    assert result.rc == 0, result.stderr
    rotated = read_log(server, LOG + ".1", strict=False)
    assert rotated and rotated[0] == before[0], "the old lines are in fleetbgp.log.1"
    new = server.file(LOG)
    assert new.exists and (new.user, new.group, new.mode) == ("fleetbgp", "fleetbgp", 0o640)
    server.check_output("/opt/fleetbgp/venv/bin/fleetbgp reload")

    def reload_line():
        return [o for o in read_log(server) if o["message"].startswith("configuration reloaded from")]

    lines = wait_until(reload_line, 20)
    assert lines, server.run(f"ls -l /var/log/fleetbgp; tail -3 {LOG}").stdout
    reloads_before = [o for o in before if o["message"].startswith("configuration reloaded")]
    reloads_rotated = [o for o in read_log(server, LOG + ".1", strict=False)
                       if o["message"].startswith("configuration reloaded")]
    assert reloads_rotated == reloads_before, "the reload went into the rotated file"
    # As the guide: the agent's messages stop after its own file, they are not in /var/log/syslog.
    syslog = server.run("grep -F 'configuration reloaded from' /var/log/syslog").stdout
    assert syslog == "", f"the agent's message is in /var/log/syslog too: {syslog}"


@pytest.mark.parametrize("protocol", ["tcp", "udp", "relp"])
def test_forwarded_to_the_remote_server(router, protocol):
    """The router's rsyslog (a syslog server made by prepare.yml: imtcp, imudp, imrelp, one file each) got
    the agent's messages over each of the three remotes in inventory/group_vars/bgp_servers.yml."""
    remote_log = f"{REMOTE_DIR}/fleetbgp-{protocol}.log"

    def remote():
        result = router.run(f"cat {remote_log}")
        return result.rc == 0 and "session established" in result.stdout and result.stdout

    text = wait_until(remote, 20)
    assert text, router.run(f"ls -l {REMOTE_DIR}; tail -3 {remote_log}").stdout
    assert " host-server-1 fleetbgp" in text.splitlines()[-1], text.splitlines()[-1]
