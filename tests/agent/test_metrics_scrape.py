"""Prometheus metrics (fleetbgp.metrics), scraped over HTTP and parsed with prometheus_client's own
parser: every metric, its type and labels, values read from the speaker at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import socket
import time
import urllib.error
import urllib.request

import pytest
from control_fakes import FakePeer, LoopThread, sample_speaker
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fleetbgp import __version__, metrics
from fleetbgp.fsm import State
from fleetbgp.metrics import Metrics
from fleetbgp.settings import AgentSettings


class Health:
    def __init__(self) -> None:
        self.checks = [{"name": "web", "state": "UP", "since": 1.0, "transitions": 4},
                       {"name": "dns", "state": "RISING", "since": 2.0, "transitions": 1}]

    def status(self):
        return self.checks


class Api:
    def status(self):
        return [{"name": "hc", "restarts": 3}, {"name": "exporter", "restarts": 0}]


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(metric_family, /, **labels) -> list:
    return [s for s in metric_family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def value(families, name, sample_name=None, /, **labels) -> float:
    family = families[name]
    found = [s for s in samples(family, **labels) if sample_name is None or s.name == sample_name]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0].value


@contextlib.contextmanager
def running(speaker, loop_thread: LoopThread | None = None):
    m = Metrics(speaker, AgentSettings(metrics_address="127.0.0.1", metrics_port=0))
    if loop_thread is None:
        assert m.start()
    else:
        async def start():
            return m.start()
        assert loop_thread.run(start())
    try:
        assert m.address is not None
        yield m, m.address[1]
    finally:
        m.stop()


@pytest.fixture
def speaker():
    s = sample_speaker()
    s.health = Health()
    s.api = Api()
    s.reload_counts = {"success": 2, "failure": 1}
    s.last_reload = {"result": "failure", "time": time.time(), "errors": ["x"]}
    return s


def test_every_metric(speaker):
    with running(speaker) as (_m, port):
        f = scrape(port)
    a, b, c = "192.0.2.1", "192.0.2.9", "2001:db8::1"

    assert f["fleetbgp_session_up"].type == "gauge"
    assert value(f, "fleetbgp_session_up", peer=a, local_as="65001", peer_as="65000") == 1
    assert value(f, "fleetbgp_session_up", peer=b) == 0

    states = {s.labels["state"]: s.value for s in samples(f["fleetbgp_session_state"], peer=b)}
    assert states == {"Idle": 0, "Connect": 0, "Active": 1, "OpenSent": 0, "OpenConfirm": 0, "Established": 0}

    assert f["fleetbgp_session_flaps"].type == "counter"
    assert value(f, "fleetbgp_session_flaps", "fleetbgp_session_flaps_total", peer=a) == 1
    assert value(f, "fleetbgp_session_established", "fleetbgp_session_established_total", peer=a) == 2
    since = value(f, "fleetbgp_session_established_timestamp_seconds", peer=a)
    assert time.time() - 3800 < since < time.time() - 3600
    assert value(f, "fleetbgp_session_established_timestamp_seconds", peer=b) == 0

    assert value(f, "fleetbgp_routes_announced", "fleetbgp_routes_announced_total", peer=a) == 7
    assert value(f, "fleetbgp_routes_withdrawn", "fleetbgp_routes_withdrawn_total", peer=a) == 4

    assert value(f, "fleetbgp_adj_rib_out_routes", peer=a, family="ipv4 unicast") == 3
    assert value(f, "fleetbgp_adj_rib_out_routes", peer=c, family="ipv6 unicast") == 1
    assert value(f, "fleetbgp_adj_rib_in_routes", peer=c, family="ipv6 unicast") == 0

    assert f["fleetbgp_notifications"].type == "counter"
    assert value(f, "fleetbgp_notifications", "fleetbgp_notifications_total", peer=a, direction="received",
                 code="6", subcode="2") == 1
    assert value(f, "fleetbgp_update_messages", "fleetbgp_update_messages_total", peer=a,
                 direction="received") == 2
    assert value(f, "fleetbgp_update_messages", "fleetbgp_update_messages_total", peer=a, direction="sent") == 3
    assert value(f, "fleetbgp_messages", "fleetbgp_messages_total", peer=a, direction="sent") == 15

    hc = {s.labels["state"]: s.value for s in samples(f["fleetbgp_healthcheck_state"], check="web")}
    assert hc["UP"] == 1 and sum(hc.values()) == 1
    assert set(hc) >= {"INIT", "DISABLED", "RISING", "FALLING", "UP", "DOWN"}
    assert value(f, "fleetbgp_healthcheck_state", check="dns", state="RISING") == 1
    assert value(f, "fleetbgp_healthcheck_transitions", "fleetbgp_healthcheck_transitions_total",
                 check="web") == 4

    assert value(f, "fleetbgp_api_process_restarts", "fleetbgp_api_process_restarts_total", process="hc") == 3

    assert value(f, "fleetbgp_config_reloads", "fleetbgp_config_reloads_total", result="success") == 2
    assert value(f, "fleetbgp_config_reloads", "fleetbgp_config_reloads_total", result="failure") == 1
    assert value(f, "fleetbgp_config_last_reload_successful") == 0
    assert value(f, "fleetbgp_config_info", sha256="ab" * 32, path="/etc/fleetbgp/fleetbgp.conf") == 1
    assert value(f, "fleetbgp_build_info", version=__version__, python=platform.python_version()) == 1
    assert value(f, "fleetbgp_maintenance") == 0
    assert "process_resident_memory_bytes" in f


def test_values_are_read_at_scrape_time(speaker):
    with running(speaker) as (_m, port):
        assert value(scrape(port), "fleetbgp_maintenance") == 0
        speaker.maintenance = True
        peer = speaker.peers["192.0.2.1"]
        peer.stats["flaps"] = 5
        peer.notifications[("sent", 6, 4)] = 2
        peer.add("100.10.9.0/24 next-hop self")
        speaker.peers["198.51.100.1"] = FakePeer("198.51.100.1", state=State.OPENSENT)
        f = scrape(port)
    assert value(f, "fleetbgp_maintenance") == 1
    assert value(f, "fleetbgp_session_flaps", "fleetbgp_session_flaps_total", peer="192.0.2.1") == 5
    assert value(f, "fleetbgp_notifications", "fleetbgp_notifications_total", peer="192.0.2.1",
                 direction="sent", code="6", subcode="4") == 2
    assert value(f, "fleetbgp_adj_rib_out_routes", peer="192.0.2.1", family="ipv4 unicast") == 4
    assert value(f, "fleetbgp_session_state", peer="198.51.100.1", state="OpenSent") == 1


def test_scrape_reads_the_speaker_on_its_event_loop(speaker):
    seen = []
    lt = LoopThread()
    original = metrics.take_snapshot

    def spy(s):
        seen.append(asyncio.get_running_loop())
        return original(s)
    try:
        with running(speaker, lt) as (m, port):
            assert m.collector.loop is lt.loop
            metrics.take_snapshot = spy
            try:
                scrape(port)
            finally:
                metrics.take_snapshot = original
    finally:
        lt.close()
    assert seen == [lt.loop], "the snapshot must be taken on the speaker's loop, not the HTTP thread"


def test_a_stuck_loop_fails_the_scrape_instead_of_hanging(speaker, monkeypatch):
    monkeypatch.setattr(metrics, "SCRAPE_TIMEOUT", 0.3)
    lt = LoopThread()
    try:
        with running(speaker, lt) as (_m, port):
            lt.loop.call_soon_threadsafe(time.sleep, 1.5)  # the loop is blocked meanwhile
            started = time.monotonic()
            with pytest.raises(urllib.error.HTTPError) as exc:
                scrape(port)
            assert exc.value.code == 500
            exc.value.close()
            assert time.monotonic() - started < 1.4
            time.sleep(1.3)
            assert value(scrape(port), "fleetbgp_maintenance") == 0, "fine again once the loop runs"
    finally:
        lt.close()


def test_own_registry_not_the_global_one(speaker):
    with running(speaker):
        assert REGISTRY.get_sample_value("fleetbgp_maintenance") is None


def test_port_in_use_is_logged_not_fatal(speaker, caplog):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        m = Metrics(speaker, AgentSettings(metrics_port=port))
        with caplog.at_level(logging.ERROR, "fleetbgp.metrics"):
            assert m.start() is False
        assert f"127.0.0.1:{port}" in caplog.text and "metrics are off" in caplog.text
        m.stop()
    finally:
        busy.close()


def test_metrics_off_does_nothing(speaker):
    m = Metrics(speaker, AgentSettings(metrics_port=None))
    assert m.start() is False
    m.stop()


def test_stop_frees_the_port(speaker):
    with running(speaker) as (m, port):
        scrape(port)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    m.stop()  # twice is fine


def test_no_health_no_api_no_peers():
    from control_fakes import FakeSpeaker
    with running(FakeSpeaker()) as (_m, port):
        f = scrape(port)
    assert f["fleetbgp_session_up"].samples == []
    assert f["fleetbgp_healthcheck_state"].samples == []
    assert value(f, "fleetbgp_config_reloads", "fleetbgp_config_reloads_total", result="success") == 0
    assert value(f, "fleetbgp_config_last_reload_successful") == 1


def test_routes_advertised_follow_session_and_drain(speaker):
    """fleetbgp_routes_advertised: what the peer holds from us (the alert 'no announcements while
    expected' reads it); the adj-rib-out stays as configured."""
    a, b = "192.0.2.1", "192.0.2.9"
    with running(speaker) as (_m, port):
        f = scrape(port)
        assert value(f, "fleetbgp_routes_advertised", peer=a, family="ipv4 unicast") == 3
        assert value(f, "fleetbgp_routes_advertised", peer=b, family="ipv4 unicast") == 0  # Active
        assert value(f, "fleetbgp_adj_rib_out_routes", peer=b, family="ipv4 unicast") == 1
        speaker.peers[a].drain_mode = "withdraw"
        f = scrape(port)
        assert value(f, "fleetbgp_routes_advertised", peer=a, family="ipv4 unicast") == 0
        speaker.peers[a].drain_mode = "metric"  # drained by MED: still announced
        f = scrape(port)
        assert value(f, "fleetbgp_routes_advertised", peer=a, family="ipv4 unicast") == 3


CONFIG = """
neighbor {peer} {{
    router-id {rid};
    local-address {rid};
    local-as 65001;
    peer-as 65000;
    static {{
        route 100.10.0.100/32 next-hop self med {med};
        route 100.10.1.0/24 next-hop self;
    }}
}}
"""


def _config(tmp_path, name, **kw):
    from fleetbgp.config import load

    path = tmp_path / name
    path.write_text(CONFIG.format(**kw))
    return load(str(path))


def test_config_routes_and_digest(speaker, tmp_path):
    """fleetbgp_config_routes and fleetbgp_config_routes_digest_info: hosts that announce the same
    routes agree on the digest although router ID and neighbor differ; another MED differs."""
    one = _config(tmp_path, "one.conf", peer="192.0.2.1", rid="192.0.2.11", med=100)
    two = _config(tmp_path, "two.conf", peer="192.0.2.5", rid="192.0.2.12", med=100)
    other = _config(tmp_path, "three.conf", peer="192.0.2.1", rid="192.0.2.11", med=200)
    digests = []
    with running(speaker) as (_m, port):
        assert value(scrape(port), "fleetbgp_config_routes") == 0  # an empty config: no routes
        for i, config in enumerate((one, two, other)):
            speaker.config = config
            speaker.config_sha256 = f"{i:064x}"
            f = scrape(port)
            assert value(f, "fleetbgp_config_routes") == 2
            (sample,) = f["fleetbgp_config_routes_digest_info"].samples
            assert sample.name == "fleetbgp_config_routes_digest_info" and sample.value == 1
            assert len(sample.labels["sha256"]) == 64
            digests.append(sample.labels["sha256"])
    assert digests[0] == digests[1]
    assert digests[2] != digests[0]


def test_maintenance_since_is_when_the_drain_began(speaker):
    """fleetbgp_maintenance_since_timestamp_seconds: 0 while not drained; the time `maintenance on`
    was first asked for (asking again keeps it), 0 again after `off`. FleetbgpMaintenanceForgotten
    reads it: unlike a `for: 4h`, it survives a restart of Prometheus."""
    with running(speaker) as (_m, port):
        assert value(scrape(port), "fleetbgp_maintenance_since_timestamp_seconds") == 0
        before = time.time()
        speaker.set_maintenance(True)
        since = value(scrape(port), "fleetbgp_maintenance_since_timestamp_seconds")
        assert before <= since <= time.time()
        speaker.set_maintenance(True)
        assert value(scrape(port), "fleetbgp_maintenance_since_timestamp_seconds") == since
        speaker.set_maintenance(False)
        f = scrape(port)
    assert value(f, "fleetbgp_maintenance_since_timestamp_seconds") == 0
    assert value(f, "fleetbgp_maintenance") == 0


def file_state(families) -> str:
    states = {s.labels["state"]: s.value for s in families["fleetbgp_config_file_state"].samples}
    assert set(states) == {"same", "differs", "missing", "unreadable"} and sum(states.values()) == 1, states
    return next(name for name, v in states.items() if v == 1)


def test_config_file_state_follows_the_file_on_disk(speaker, tmp_path):
    """fleetbgp_config_file_state (FleetbgpConfigDrift): the config file on disk against the hash
    of the running config: written but not loaded, loaded, removed, not a file."""
    from fleetbgp.daemon import file_sha256

    conf = tmp_path / "fleetbgp.conf"
    conf.write_text("# the running config\n")
    speaker.config_path = str(conf)
    speaker.config_sha256 = file_sha256(str(conf))
    with running(speaker) as (_m, port):
        assert file_state(scrape(port)) == "same"
        conf.write_text("# a deploy wrote this; no reload yet\n")
        assert file_state(scrape(port)) == "differs"
        speaker.config_sha256 = file_sha256(str(conf))  # what a successful reload sets
        assert file_state(scrape(port)) == "same"
        conf.unlink()
        assert file_state(scrape(port)) == "missing"
        conf.mkdir()
        assert file_state(scrape(port)) == "unreadable"


def test_config_file_state_is_read_off_the_event_loop(speaker, tmp_path, monkeypatch):
    """The file is stat'ed (and hashed) in the HTTP server's thread, not on the speaker's loop."""
    from fleetbgp.config_file_watch import ConfigFileWatch

    conf = tmp_path / "fleetbgp.conf"
    conf.write_text("x\n")
    speaker.config_path = str(conf)
    speaker.config_sha256 = "0" * 64
    loops = []
    original = ConfigFileWatch._sha256

    def spy(self, path):
        loops.append(_loop_of_this_thread())
        return original(self, path)

    monkeypatch.setattr(ConfigFileWatch, "_sha256", spy)
    lt = LoopThread()
    try:
        with running(speaker, lt) as (_m, port):
            assert file_state(scrape(port)) == "differs"
    finally:
        lt.close()
    assert loops == [None], "the config file must not be read on the speaker's event loop"


def _loop_of_this_thread():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
