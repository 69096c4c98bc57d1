"""Health checks against BIRD 2: what the router holds follows a real service.

The service is a TCP listener the test starts, stops and starts again inside the speaker's
namespace (127.0.0.1:8080 there); BIRD is the router in the other namespace. Covered:
- the built-in `healthcheck` block: the route is withdrawn at BIRD after exactly `fall` failed
  checks once the service stops, and announced again after exactly `rise` good ones once it is
  back (the checks are counted in the agent's DEBUG log);
- the disable file drains: by metric (BIRD sees the MED change) and by withdrawal;
- `fleetbgp healthcheck` as an API program (`process hc { run fleetbgp healthcheck ...; }`), as an
  ExaBGP user would run `exabgp healthcheck`: BIRD sees the MED follow the service. With
  INTEROP_SPEAKER=exabgp the same program runs under ExaBGP itself, proving it a drop-in there.
"""

from __future__ import annotations

import re
import sys
import time

import pytest
from interop_env import AGENT_AS, ROUTER_AS, assert_never, bird_v4_peer

from netlab import Neighbor, render_config, wait_until
from netlab.exaconf import Process

pytestmark = pytest.mark.interop

SERVICE_PORT = 8080
IP = "100.10.0.100/32"

LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    conn.close()
"""

# The API program's check command: connect to the service (a script file: no quoting games).
PROBE = f"""
import socket
socket.create_connection(("127.0.0.1", {SERVICE_PORT}), 1).close()
"""


class Service:
    """The TCP service, a process inside the speaker's namespace."""

    def __init__(self, topo) -> None:
        self.topo = topo
        self.proc = topo.lab.spawn(topo.s, [sys.executable, "-c", LISTENER, str(SERVICE_PORT)], name="service")
        self.wait_listening()

    def wait_listening(self) -> None:
        def up() -> bool:
            cp = self.topo.s.run(["ss", "-Hltn", f"sport = :{SERVICE_PORT}"], check=False)
            return str(SERVICE_PORT) in cp.stdout
        wait_until(up, 10, "the service to listen")

    def stop(self) -> None:
        self.proc.stop()

    def start(self) -> None:
        self.proc.start()
        self.wait_listening()


def neighbor(link, **kw) -> Neighbor:
    return Neighbor(link.a4, link.b4, AGENT_AS, ROUTER_AS, **kw)


def healthcheck(body: str, interval: float = 1) -> str:
    return (f"healthcheck web {{\n  ip {IP};\n  check tcp 127.0.0.1:{SERVICE_PORT};\n"
            f"  interval {interval}; fast-interval 0.5; timeout 1;\n{body}\n}}\n")


def med_at_bird(bird) -> int | str | None:
    """The MED BIRD holds for IP from the agent, or "absent"."""
    route = bird.rib("agent4").get(IP)
    return "absent" if route is None else route["med"]


def wait_med(bird, want, timeout: float = 20) -> None:
    wait_until(lambda: med_at_bird(bird) == want, timeout, f"BIRD to hold {IP} with MED {want}",
               describe=lambda: f"BIRD has: {med_at_bird(bird)}")


def checks_logged(speaker) -> list[tuple[str, float]]:
    """('ok'|'failed', position in the log) of every check the agent logged for `web`."""
    return [(m.group(1), m.start()) for m in re.finditer(r"healthcheck web: (ok|failed): ", speaker.log_text())]


@pytest.fixture
def builtin_only(speaker_kind):
    if speaker_kind != "fleetbgp":
        pytest.skip("the healthcheck block is fleetbgp's: ExaBGP has no built-in health checks")


def start_agent(topo, bird, make_speaker, text: str, log_level: str | None = "debug"):
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    speaker = make_speaker(topo.s, [neighbor(topo.link)])
    speaker.raw_config = text
    if log_level:
        speaker.log_level = log_level
    speaker.start()
    bird.wait_established("agent4")
    return speaker


# -- the built-in block ----------------------------------------------------------------------------

def test_service_stop_withdraws_after_fall_checks_and_start_reannounces_after_rise(
        topo, bird, make_speaker, builtin_only):
    service = Service(topo)
    text = render_config([neighbor(topo.link)]) + "\n" + healthcheck("  rise 3;\n  fall 3;\n  withdraw-on-down;")
    speaker = start_agent(topo, bird, make_speaker, text)
    wait_med(bird, 100)
    speaker.wait_log(r"healthcheck web: RISING -> UP")
    assert [r for r, _ in checks_logged(speaker)][:3] == ["ok", "ok", "ok"]

    service.stop()
    speaker.wait_log(r"healthcheck web: (UP -> FALLING)")
    # one failed check is not enough: the route stays while FALLING
    assert med_at_bird(bird) == 100
    wait_med(bird, "absent")
    log = speaker.log_text()
    fell_at = log.index("FALLING -> DOWN")
    falling_at = log.index("UP -> FALLING")
    checks = checks_logged(speaker)
    last_ok = max(pos for r, pos in checks if r == "ok" and pos < falling_at)
    failed = [r for r, pos in checks if last_ok < pos < fell_at]
    assert failed == ["failed"] * 3, f"fall 3, but the checks from the last ok to DOWN were {failed}"

    service.start()
    speaker.wait_log(r"healthcheck web: DOWN -> RISING")
    assert med_at_bird(bird) == "absent"       # RISING: not yet
    wait_med(bird, 100)
    log = speaker.log_text()
    rose_at = log.index("RISING -> UP", fell_at)
    after_down = [r for r, pos in checks_logged(speaker) if fell_at < pos < rose_at]
    assert after_down[-3:] == ["ok", "ok", "ok"] and after_down[:-3].count("ok") == 0, after_down
    assert bird.established("agent4")


def test_service_stop_without_withdraw_announces_the_down_metric(topo, bird, make_speaker, builtin_only):
    service = Service(topo)
    text = render_config([neighbor(topo.link)]) + "\n" + healthcheck(
        "  rise 2;\n  fall 2;\n  up-metric 50;\n  down-metric 5000;\n  community [ 65001:100 ];")
    start_agent(topo, bird, make_speaker, text, log_level=None)
    wait_med(bird, 50)
    assert bird.rib("agent4")[IP]["communities"] == [(65001, 100)]
    service.stop()
    wait_med(bird, 5000)
    service.start()
    wait_med(bird, 50)


def test_disable_file_drains_by_metric_then_comes_back(topo, bird, make_speaker, builtin_only):
    Service(topo)
    flag = topo.lab.path("maintenance")
    text = render_config([neighbor(topo.link)]) + "\n" + healthcheck(
        f"  rise 2;\n  disable-file {flag};", interval=30)
    start_agent(topo, bird, make_speaker, text, log_level=None)
    wait_med(bird, 100)
    flag.touch()
    start = time.monotonic()
    wait_med(bird, 500, timeout=10)
    assert time.monotonic() - start < 5, "the drain must not wait for the 30 s check interval"
    flag.unlink()
    wait_med(bird, 100, timeout=10)


def test_disable_file_drains_by_withdrawal(topo, bird, make_speaker, builtin_only):
    Service(topo)
    flag = topo.lab.path("maintenance")
    flag.touch()      # drained from the start: never announced
    text = render_config([neighbor(topo.link)]) + "\n" + healthcheck(
        f"  rise 1;\n  withdraw-on-down;\n  disable-file {flag};")
    speaker = start_agent(topo, bird, make_speaker, text)
    speaker.wait_log(r"healthcheck web: INIT -> DISABLED")
    assert_never(lambda: med_at_bird(bird) != "absent", 2, "an announcement while drained")
    flag.unlink()
    wait_med(bird, 100)
    flag.touch()
    wait_med(bird, "absent", timeout=10)


def test_down_hook_runs_after_the_withdrawal_reached_bird(topo, bird, make_speaker, builtin_only):
    """The down-execute hook asks BIRD (through birdc, from the hook) whether it still has the
    route: by the time the hook runs, BIRD has the withdrawal. (The strict order -- withdraw,
    flushed, then the hook -- is proven in tests/agent/test_health_runner.py with a slow flush;
    here it is the real thing, end to end.)"""
    service = Service(topo)
    seen = topo.lab.path("hook-saw")
    birdc = f"ip netns exec {topo.r.name} {bird.birdc_path} -s {bird.sock} show route {IP} protocol agent4"
    text = render_config([neighbor(topo.link)]) + "\n" + healthcheck(
        f"  rise 1;\n  fall 1;\n  withdraw-on-down;\n  down-execute \"sleep 0.05; {birdc} > {seen}\";")
    start_agent(topo, bird, make_speaker, text, log_level=None)
    wait_med(bird, 100)
    service.stop()
    wait_until(lambda: seen.exists() and seen.read_text().strip(), 15, "the down hook to run")
    assert IP.split("/")[0] not in seen.read_text(), f"BIRD still had the route when the hook ran:\n{seen.read_text()}"


# -- the API program --------------------------------------------------------------------------------

def test_fleetbgp_healthcheck_program_as_api_process(topo, bird, make_speaker, speaker_kind):
    service = Service(topo)
    probe = topo.lab.path("probe.py")
    probe.write_text(PROBE)
    program = (f"{sys.executable} -m fleetbgp healthcheck --cmd '{sys.executable} {probe}' --ip {IP} "
               "--rise 2 --fall 2 --interval 1 --fast-interval 0.5 --no-ip-setup --community 65001:7 --name web")
    n = neighbor(topo.link, api_processes=("hc",))
    text = render_config([n], [Process("hc", program, encoder="text")])
    bird.add_peer(bird_v4_peer(topo.link))
    bird.start()
    if speaker_kind == "fleetbgp":
        speaker = make_speaker(topo.s, [n])
        speaker.raw_config = text
    else:
        from netlab import ExaBgp

        # ExaBGP itself running fleetbgp's program (its acks are off here: the program must not
        # wait for them forever); PYTHONPATH lets the program import fleetbgp.
        speaker = ExaBgp(topo.lab, topo.s, config_text=text, name="exabgp-speaker")
        base_env = speaker.env
        speaker.env = lambda: {**base_env(), "PYTHONPATH": str(_agent_src())}
    speaker.start()
    bird.wait_established("agent4")
    wait_med(bird, 100)
    assert bird.rib("agent4")[IP]["communities"] == [(65001, 7)]
    service.stop()
    wait_med(bird, 1000)
    service.start()
    wait_med(bird, 100)


def _agent_src():
    from netlab.fleetbgp import AGENT_SRC

    return AGENT_SRC
