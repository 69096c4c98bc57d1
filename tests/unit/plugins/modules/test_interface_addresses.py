"""fleet.bgp.interface_addresses against a fake `ip` (run_command) that keeps the interfaces' addresses
in a dict, with the ownership record in a temporary directory: what is added and removed, what is never
removed, the record, prune, check mode and diff, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.modules import interface_addresses


class FakeIp:
    """The `ip` commands the module runs, on {interface: {ADDRESS/LEN: label}}."""

    def __init__(self):
        self.links = {"lo": {"127.0.0.1/8": "lo", "::1/128": None}, "eth0": {"192.0.2.10/24": "eth0"}}
        self.calls: list[list[str]] = []
        self.fail_next: dict[str, tuple[int, str]] = {}  # verb -> (rc, stderr)

    def changes(self) -> list[list[str]]:
        return [c for c in self.calls if "show" not in c]

    def __call__(self, args, **kwargs):  # set on the class, not bound: no `self` of the module
        assert isinstance(args, list), "argv lists only, no shell"
        self.calls.append(args[1:])
        words = args[1:]
        if words[:2] == ["-json", "address"]:
            dev = words[-1]
            if dev not in self.links:
                return 1, "", f'Device "{dev}" does not exist.\n'
            info = [{"family": "inet6" if ":" in a else "inet", "local": a.split("/")[0],
                     "prefixlen": int(a.split("/")[1]), **({"label": lab} if lab else {})}
                    for a, lab in self.links[dev].items()]
            return 0, json.dumps([{"ifname": dev, "addr_info": info}]), ""
        family, _address, verb, addr, _dev, dev, *rest = words
        assert family == ("-6" if ":" in addr else "-4")
        if verb in self.fail_next:
            rc, err = self.fail_next.pop(verb)
            return rc, "", err
        if verb == "replace":
            self.links[dev].setdefault(addr, rest[1] if rest[:1] == ["label"] else None)
            assert rest == (["nodad"] if ":" in addr else ["label", rest[1]]), rest
        elif verb == "del":
            if addr not in self.links[dev]:
                return 2, "", "Error: ipv4: Address not found.\n"
            del self.links[dev][addr]
        return 0, "", ""


@pytest.fixture
def ip(monkeypatch) -> FakeIp:
    fake = FakeIp()
    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False: "/sbin/ip")
    return fake


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "service-addresses"


WANTED = ["100.10.0.100", "2001:DB8:100::100/128", "100.10.0.100/32", "100.10.0.5"]


def test_adds_records_and_is_idempotent(ip, record, run_module):
    failed, result = run_module(interface_addresses, {"addresses": WANTED, "record": str(record)}, diff=True)
    assert not failed and result["changed"], result
    # normalised, merged, sorted (IPv4 before IPv6, numerically)
    assert result["addresses"] == ["100.10.0.5/32", "100.10.0.100/32", "2001:db8:100::100/128"]
    assert result["added"] == result["addresses"] and result["removed"] == []
    assert ip.changes() == [
        ["-4", "address", "replace", "100.10.0.5/32", "dev", "lo", "label", "lo:fleetbgp"],
        ["-4", "address", "replace", "100.10.0.100/32", "dev", "lo", "label", "lo:fleetbgp"],
        ["-6", "address", "replace", "2001:db8:100::100/128", "dev", "lo", "nodad"],
    ]
    lines = record.read_text().splitlines()
    assert lines[0].startswith("# Managed by Ansible")
    assert [line for line in lines if not line.startswith("#")] == [
        "address replace 100.10.0.5/32 dev lo label lo:fleetbgp",
        "address replace 100.10.0.100/32 dev lo label lo:fleetbgp",
        "address replace 2001:db8:100::100/128 dev lo nodad",
    ]
    assert record.stat().st_mode & 0o777 == 0o644
    assert result["diff"]["before"] == ""
    assert result["diff"]["after"] == "100.10.0.5/32\n100.10.0.100/32\n2001:db8:100::100/128\n"

    ip.calls.clear()
    failed, result = run_module(interface_addresses, {"addresses": WANTED, "record": str(record)}, diff=True)
    assert not failed and not result["changed"], result
    assert ip.changes() == [] and result["added"] == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_prune_false_only_adds_and_keeps_the_old_ones_owned(ip, record, run_module):
    run_module(interface_addresses, {"addresses": ["100.10.0.1", "100.10.0.2"], "record": str(record)})
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.2", "100.10.0.3"], "prune": False,
                                                      "record": str(record)})
    assert not failed and result["changed"]
    assert result["added"] == ["100.10.0.3/32"] and result["removed"] == []
    assert result["not_pruned"] == ["100.10.0.1/32"]
    assert "100.10.0.1/32" in ip.links["lo"]
    assert "address replace 100.10.0.1/32 dev lo label lo:fleetbgp" in record.read_text(), \
        "an address not pruned stays on the record (a later prune removes it; the boot unit keeps it)"
    # again: nothing new
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.2", "100.10.0.3"], "prune": False,
                                                      "record": str(record)})
    assert not result["changed"] and result["not_pruned"] == ["100.10.0.1/32"]
    # the prune after the agent withdrew it removes exactly that one
    ip.calls.clear()
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.2", "100.10.0.3"],
                                                      "record": str(record)})
    assert result["changed"] and result["removed"] == ["100.10.0.1/32"] and result["added"] == []
    assert ip.changes() == [["-4", "address", "del", "100.10.0.1/32", "dev", "lo"]]
    assert "100.10.0.1/32" not in record.read_text()


def test_never_removes_what_the_record_does_not_list(ip, record, run_module):
    ip.links["lo"]["192.0.2.7/32"] = "lo"  # an operator's own address
    run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record)})
    failed, result = run_module(interface_addresses, {"addresses": [], "record": str(record)})
    assert result["removed"] == ["100.10.0.1/32"]
    failed, result = run_module(interface_addresses, {"state": "absent", "record": str(record)})
    assert not failed and not result["changed"]
    assert set(ip.links["lo"]) == {"127.0.0.1/8", "::1/128", "192.0.2.7/32"}
    assert all("del" not in c for c in ip.calls if "192.0.2.7/32" in c or "127.0.0.1/8" in c)


def test_an_address_already_there_is_adopted_not_added(ip, record, run_module):
    ip.links["lo"]["100.10.0.1/32"] = "lo"
    _failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record)})
    assert result["changed"] and result["added"] == [] and ip.changes() == []
    assert "address replace 100.10.0.1/32 dev lo label lo:fleetbgp" in record.read_text()


def test_check_mode_reports_and_changes_nothing(ip, record, run_module):
    run_module(interface_addresses, {"addresses": ["100.10.0.1", "100.10.0.2"], "record": str(record)})
    before = record.read_text()
    ip.calls.clear()
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.2", "2001:db8::3"],
                                                      "record": str(record)}, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert result["added"] == ["2001:db8::3/128"] and result["removed"] == ["100.10.0.1/32"]
    assert ip.changes() == [] and record.read_text() == before
    assert result["diff"]["before"] == "100.10.0.1/32\n100.10.0.2/32\n"
    assert result["diff"]["after"] == "100.10.0.2/32\n2001:db8::3/128\n"


def test_absent_removes_the_recorded_ones_and_empties_the_record(ip, record, run_module):
    run_module(interface_addresses, {"addresses": ["100.10.0.1", "2001:db8::1"], "record": str(record)})
    failed, result = run_module(interface_addresses, {"state": "absent", "record": str(record)})
    assert not failed and result["changed"]
    assert result["removed"] == ["100.10.0.1/32", "2001:db8::1/128"]
    assert set(ip.links["lo"]) == {"127.0.0.1/8", "::1/128"}
    assert all(line.startswith("#") for line in record.read_text().splitlines())
    failed, result = run_module(interface_addresses, {"state": "absent", "record": str(record)})
    assert not result["changed"]


def test_absent_without_a_record_does_nothing(ip, record, run_module):
    failed, result = run_module(interface_addresses, {"state": "absent", "record": str(record)})
    assert not failed and not result["changed"] and not record.exists() and ip.calls == []


def test_interface_change_removes_from_the_recorded_interface(ip, record, run_module):
    ip.links["dummy0"] = {}
    run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record)})
    _failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.1"], "interface": "dummy0",
                                                       "record": str(record)})
    assert result["added"] == ["100.10.0.1/32"] and result["removed"] == ["100.10.0.1/32 dev lo"]
    assert "100.10.0.1/32" in ip.links["dummy0"] and "100.10.0.1/32" not in ip.links["lo"]
    assert ip.links["dummy0"]["100.10.0.1/32"] == "dummy0:fleetbgp"


def test_an_address_gone_meanwhile_is_removed_all_the_same(ip, record, run_module):
    run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record)})
    ip.fail_next["del"] = (2, "Error: ipv4: Address not found.\n")
    failed, result = run_module(interface_addresses, {"addresses": [], "record": str(record)})
    assert not failed and result["removed"] == ["100.10.0.1/32"]


def test_a_failed_ip_command_fails_and_keeps_the_address_recorded(ip, record, run_module):
    run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record)})
    ip.fail_next["del"] = (2, "RTNETLINK answers: Operation not permitted\n")
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.2"], "record": str(record)})
    assert failed and "Operation not permitted" in result["msg"]
    text = record.read_text()
    assert "100.10.0.1/32" in text and "100.10.0.2/32" in text, "both on the host, both on the record"


@pytest.mark.parametrize(("item", "why"), [
    ("100.10.0.0/24", "is a network, not a host address"),
    ("2001:db8::/64", "is a network, not a host address"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("224.0.0.5", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("web.example.com", "is not an IPv4 or IPv6 address"),
])
def test_refuses_what_is_not_a_host_address(ip, record, run_module, item, why):
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.1", item], "record": str(record)})
    assert failed and item in result["msg"] and why in result["msg"], result["msg"]
    assert ip.changes() == [] and not record.exists()


@pytest.mark.parametrize(("args", "message"), [
    ({"label": "lo:fleetbgp-service"}, "at most 15 characters"),
    ({"label": "eth0:svc"}, "starts with the interface name 'lo'"),
    ({"interface": "bond0.1000:x"}, "is not an interface name"),
    ({"interface": "eth9"}, "there is no interface 'eth9'"),
])
def test_refuses_bad_labels_and_interfaces(ip, record, run_module, args, message):
    failed, result = run_module(interface_addresses, {"addresses": ["100.10.0.1"], "record": str(record), **args})
    assert failed and message in result["msg"], result["msg"]


def test_refuses_a_record_it_did_not_write(ip, record, run_module):
    record.write_text("# mine\naddress add 100.10.0.1/32 dev lo\n")
    failed, result = run_module(interface_addresses, {"addresses": [], "record": str(record)})
    assert failed and f"{record}:2:" in result["msg"] and "move the file away" in result["msg"]
    assert ip.changes() == []
