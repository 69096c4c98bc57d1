#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: interface_addresses
short_description: Put host addresses (service addresses) on an interface, removing only those it added
version_added: 0.2.0
description:
  - Configures a set of host addresses (IPv4 C(/32), IPv6 C(/128)) on an interface (by default C(lo)),
    the service addresses a BGP server announces. The role C(fleet.bgp.service_addresses) uses it;
    use the role unless you need another set.
  - IPv4 addresses are added with C(ip address replace ADDRESS dev IFACE label LABEL), IPv6 addresses
    with C(ip -6 address replace ADDRESS dev IFACE nodad) (no duplicate address detection).
  - "Ownership: the module keeps a record (O(record)) of the addresses it manages, and removes only
    addresses that this record lists: never C(127.0.0.1), C(::1) or an address an operator put on the
    interface himself. An address in O(addresses) that is already on the interface becomes its own
    (it is recorded, and removed once it is no longer wanted)."
  - The record is an C(ip -batch) file, one C(address replace ...) line per address after a comment
    header, written atomically (root:root 0644). C(ip -batch RECORD) puts every recorded address back,
    which is what the role's boot unit C(fleetbgp-addresses.service) does.
  - Reads the interface's addresses with C(ip -json address show dev IFACE).
options:
  addresses:
    description:
      - The addresses wanted on O(interface), IPv4 or IPv6, with or without the host prefix length
        (V(100.10.0.100), V(100.10.0.100/32), V(2001:db8::1/128)). Duplicates are merged.
      - Anything that is not a host address (a network such as V(100.10.0.0/24), a loopback,
        multicast, unspecified or IPv6 link-local address) is refused with an error naming the item.
      - Ignored with O(state=absent).
    type: list
    elements: str
    default: []
  interface:
    description: The interface the addresses go on.
    type: str
    default: lo
  label:
    description:
      - The label of the IPv4 addresses the module adds (C(ip address show label lo:fleetbgp) lists them;
        IPv6 addresses have none). At most 15 characters and starting with O(interface), as the kernel
        and C(ip) require. An address that is already on the interface keeps its label until the boot
        unit puts it back (C(ip address replace) does not relabel an address).
      - Default C(<interface>:fleetbgp), e.g. C(lo:fleetbgp).
    type: str
  record:
    description:
      - The ownership record, also the file the boot unit replays with C(ip -batch). Its directory must
        exist.
    type: path
    default: /etc/fleetbgp/service-addresses
  state:
    description:
      - V(present) - exactly O(addresses) among the addresses the record lists (see O(prune)).
      - V(absent) - remove every address the record lists, and empty the record (its header stays, so
        that C(ip -batch) still reads it).
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Remove the addresses that the record lists and that are no longer in O(addresses).
      - V(false) only adds; the record keeps listing the addresses not removed, so that a later run with
        V(true) removes them. Used to add the addresses before the agent announces their routes, and to
        remove the old ones only after it has withdrawn them.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the interface and the record and reports what would be added and removed.
  diff_mode:
    support: full
    details:
      - The addresses of the record that are on the interface before, and what the record lists after, one per
        line.
  platform:
    platforms: posix
notes:
  - Needs C(ip) from iproute2 and CAP_NET_ADMIN (root).
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Service addresses on lo, removing the ones no longer wanted
  fleet.bgp.interface_addresses:
    addresses:
      - 100.10.0.100/32
      - 100.10.0.200
      - 2001:db8:100::100/128
  register: service_addresses

- name: Add only (the agent still announces the old ones)
  fleet.bgp.interface_addresses:
    addresses: [100.10.0.100/32]
    prune: false

- name: Remove every address the record lists
  fleet.bgp.interface_addresses:
    state: absent
"""

RETURN = r"""
addresses:
  description:
    - The wanted addresses, normalised with their prefix length and sorted (empty with O(state=absent)).
  returned: always
  type: list
  elements: str
  sample: ["100.10.0.100/32", "2001:db8:100::100/128"]
added:
  description: Addresses put on the interface (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["100.10.0.100/32"]
removed:
  description:
    - Addresses the record listed that were removed (in check mode, that would be). One that is on another
      interface than O(interface) (the record's) is followed by C(dev IFACE).
  returned: always
  type: list
  elements: str
  sample: ["100.10.0.50/32"]
not_pruned:
  description:
    - With O(prune=false), the recorded addresses that are no longer wanted but were left in place (and in the
      record) for a later run with O(prune=true).
  returned: always
  type: list
  elements: str
  sample: ["100.10.0.50/32"]
record:
  description: The ownership record.
  returned: always
  type: str
  sample: /etc/fleetbgp/service-addresses
"""

import ipaddress
import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_files import read_text, write_owned_file

IFNAME_MAX = 15  # IFNAMSIZ - 1: an interface name, and an IPv4 label
IFNAME_RE = re.compile(r"^[^\s/:]+$")
HEADER = (
    "# Managed by Ansible (fleet.bgp.interface_addresses, role fleet.bgp.service_addresses): do not edit.\n"
    "# The service addresses of this host, one `ip` command per line: `ip -batch THIS_FILE` puts them\n"
    "# back (fleetbgp-addresses.service does at boot). It is also the module's ownership record: it\n"
    "# only ever removes an address listed here.\n"
)


def host_address(item):
    """The normalised `ADDRESS/MAXLEN` of a host address, or ValueError saying why it is not one."""
    text = to_native(item).strip()
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    ip, maxlen = iface.ip, iface.max_prefixlen
    if iface.network.prefixlen != maxlen:
        raise ValueError(f"{text!r} is a network, not a host address (/{maxlen})")
    for what, bad in (("a loopback", ip.is_loopback), ("a multicast", ip.is_multicast),
                      ("the unspecified", ip.is_unspecified),
                      ("a link-local", ip.version == 6 and ip.is_link_local)):
        if bad:
            raise ValueError(f"{text!r} is {what} address, not a service address")
    return f"{ip.compressed}/{maxlen}"


def sort_key(entry):
    ip = ipaddress.ip_interface(entry[0]).ip
    return (ip.version, int(ip), entry[1])


def record_line(address, dev, label):
    if ":" in address:
        return f"address replace {address} dev {dev} nodad"
    return f"address replace {address} dev {dev} label {label}"


def parse_record(path, text):
    """(address, dev) of every line of the record; ValueError for a line it did not write."""
    entries = []
    for number, line in enumerate((text or "").splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            if words[:2] != ["address", "replace"] or len(words) < 5 or words[3] != "dev":
                raise ValueError("not an `address replace ADDRESS dev IFACE ...` line")
            entries.append((host_address(words[2]), words[4]))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}: {line.strip()!r}") from None
    return entries


class Interfaces:
    """The live addresses of the interfaces, read once each with `ip -json address show dev IFACE`."""

    def __init__(self, module, ip):
        self.module, self.ip, self.cache = module, ip, {}

    def addresses(self, dev):
        """{ADDRESS/LEN: label} of the interface, or None when there is no such interface."""
        if dev not in self.cache:
            rc, out, err = self.module.run_command([self.ip, "-json", "address", "show", "dev", dev])
            if rc != 0:
                if "does not exist" in err:
                    self.cache[dev] = None
                    return None
                self.module.fail_json(msg=f"ip -json address show dev {dev} failed (rc {rc}): {err.strip()}")
            found = {}
            try:
                for link in json.loads(out or "[]"):
                    for a in link.get("addr_info", []):
                        if a.get("family") in ("inet", "inet6") and "local" in a:
                            key = str(ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}"))
                            found[key] = a.get("label")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.module.fail_json(msg=f"cannot read the output of ip -json address show dev {dev}: {exc}")
            self.cache[dev] = found
        return self.cache[dev]

    def has(self, address, dev):
        return address in (self.addresses(dev) or {})


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addresses=dict(type="list", elements="str", default=[]),
            interface=dict(type="str", default="lo"),
            label=dict(type="str"),
            record=dict(type="path", default="/etc/fleetbgp/service-addresses"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            prune=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    iface, record, state = p["interface"], p["record"], p["state"]
    label = p["label"] if p["label"] is not None else f"{iface}:fleetbgp"

    if not IFNAME_RE.match(iface) or len(iface) > IFNAME_MAX:
        module.fail_json(msg=f"interface {iface!r} is not an interface name (at most {IFNAME_MAX} "
                             "characters, no blank, '/' or ':')")
    if len(label) > IFNAME_MAX or not label.startswith(iface) or any(c.isspace() for c in label):
        module.fail_json(msg=f"label {label!r}: an IPv4 label has at most {IFNAME_MAX} characters (the "
                             f"kernel's limit), no blanks, and starts with the interface name {iface!r}; "
                             f"set label, e.g. {iface[:IFNAME_MAX - 3]}:fb")

    wanted, errors = [], []
    for item in p["addresses"] if state == "present" else []:
        try:
            address = host_address(item)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if address not in wanted:
            wanted.append(address)
    if errors:
        module.fail_json(msg="addresses: " + "; ".join(errors))
    wanted.sort(key=lambda a: sort_key((a, "")))

    before_text = read_text(record)
    try:
        owned = parse_record(record, before_text)
    except ValueError as exc:
        module.fail_json(msg=f"{exc}. The record lists only what this module wrote; move the file away and "
                             "run again (addresses it listed are then left alone)")

    if state == "absent" and before_text is None:
        module.exit_json(changed=False, addresses=[], added=[], removed=[], not_pruned=[], record=record,
                         diff=dict(before="", after=""))
    ip = module.get_bin_path("ip", required=True)
    live = Interfaces(module, ip)
    if state == "present" and live.addresses(iface) is None:
        module.fail_json(msg=f"there is no interface {iface!r} on this host")

    # What to add: wanted and missing. One already there is left as it is (`ip address replace` does not
    # relabel an address, and removing it to add it again would cut its connections): it is recorded,
    # and gets the label when the boot unit puts it back.
    added = [a for a in wanted if not live.has(a, iface)]
    # Recorded, no longer wanted, still there: removed (prune) or kept on the record (no prune).
    stale = [(a, dev) for a, dev in dict.fromkeys(owned)
             if not (state == "present" and dev == iface and a in wanted) and live.has(a, dev)]
    prune = p["prune"] or state == "absent"
    to_remove, kept = (stale, []) if prune else ([], stale)

    def show(entry):
        return entry[0] if entry[1] == iface else f"{entry[0]} dev {entry[1]}"

    def render(entries):
        return HEADER + "".join(
            record_line(a, dev, label if dev == iface else live.addresses(dev)[a] or dev) + "\n"
            for a, dev in sorted(set(entries), key=sort_key))

    final = [(a, iface) for a in wanted] + kept
    # While adding and removing, the record lists both: an address is never on the host unrecorded.
    during_text = render(final + to_remove)
    final_text = render(final)
    changed = write_owned_file(module, record, during_text, before_text, prefix=".fleetbgp-addresses.")

    if not module.check_mode:
        for a in added:
            v6 = ":" in a
            argv = [ip, "-6" if v6 else "-4", "address", "replace", a, "dev", iface] + (
                ["nodad"] if v6 else ["label", label])
            rc, _out, err = module.run_command(argv)
            if rc != 0:
                module.fail_json(msg=f"{' '.join(argv[1:])} failed (rc {rc}): {err.strip()}")
        for a, dev in to_remove:
            argv = [ip, "-6" if ":" in a else "-4", "address", "del", a, "dev", dev]
            rc, _out, err = module.run_command(argv)
            # an address that went away meanwhile is as good as removed
            if rc != 0 and "not found" not in err and "Cannot assign requested address" not in err:
                module.fail_json(msg=f"{' '.join(argv[1:])} failed (rc {rc}): {err.strip()}")
        if final_text != during_text:
            write_owned_file(module, record, final_text, during_text, prefix=".fleetbgp-addresses.")
    changed = changed or bool(added or to_remove)

    before_lines = sorted({(a, dev) for a, dev in owned if live.has(a, dev)}, key=sort_key)
    diff = dict(before_header=f"{record} (on the host)", after_header=f"{record} (wanted)",
                before="".join(show(e) + "\n" for e in before_lines),
                after="".join(show(e) + "\n" for e in sorted(set(final), key=sort_key)))
    module.exit_json(changed=changed, addresses=wanted, added=added, removed=[show(e) for e in to_remove],
                     not_pruned=[show(e) for e in kept], record=record, diff=diff)


if __name__ == "__main__":
    main()
