"""ExaBGP behaviour the encoding tests cannot see (they compare routes, not End-of-RIB), checked on
the wire with the capturing peer: `manual-eor` and `announce eor AFI SAFI`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from capture import Capture
from decode import EndOfRib, decode_update
from exabgp_encoding import FLEETBGP, _stop, agent_env

CONFIG = """
process eor {{
    run {python} -c "import sys, time; time.sleep(1); print('announce eor ipv6 unicast', flush=True); time.sleep(60)";
}}
neighbor 127.0.0.1 {{
    router-id 10.0.0.2;
    local-address 127.0.0.1;
    local-as 65001;
    peer-as 65001;
    {manual}
    family {{ ipv4 unicast; ipv6 unicast; }}
    api {{ processes [ eor ]; }}
    static {{ route 10.0.0.0/24 next-hop 10.0.0.2; }}
}}
"""


def end_of_ribs(tmp_path: Path, manual: str, v6_count: int) -> list[str]:
    conf = tmp_path / "fleetbgp.conf"
    conf.write_text(CONFIG.format(python=sys.executable, manual=manual))
    with Capture() as capture:
        process = subprocess.Popen([str(FLEETBGP), "run", "--control-socket", "off", "--metrics", "off", str(conf)],
                                   env=agent_env(capture.port, 1), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and sum(
                    isinstance(r, EndOfRib) and r.family == "ipv6 unicast"
                    for body in list(capture.updates) for r in decode_update(body)) < v6_count:
                time.sleep(0.1)
            time.sleep(0.5)
            updates = list(capture.updates)
        finally:
            _stop(process)
    return [r.family for body in updates for r in decode_update(body) if isinstance(r, EndOfRib)]


def test_end_of_rib_follows_the_table_without_manual_eor(tmp_path: Path) -> None:
    assert sorted(end_of_ribs(tmp_path, "", 2)) == ["ipv4 unicast", "ipv6 unicast", "ipv6 unicast"]


def test_manual_eor_leaves_end_of_rib_to_the_program_and_a_family_narrows_it(tmp_path: Path) -> None:
    """ExaBGP's api-manual-eor: with `manual-eor true` only the program's `announce eor ipv6
    unicast` sends one, for that family only. Before, End-of-RIB went out for every family at
    once, and `announce eor AFI SAFI` sent it for every family too."""
    assert end_of_ribs(tmp_path, "manual-eor true;", 1) == ["ipv6 unicast"]
