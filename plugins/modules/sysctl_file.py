#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sysctl_file
short_description: Write a sysctl.d file and apply it, skipping the keys the running kernel lacks
version_added: 0.1.0
description:
  - Writes O(settings) to O(path), one C(key = value) line per key in key order, and writes each
    value to C(/proc/sys) when the running value differs. The role C(fleet.bgp.sysctl) uses it; use
    the role unless you need another file.
  - A key whose C(/proc/sys) file does not exist (a kernel module not loaded, an older kernel) or is
    read-only (a per-host key seen from a container or a network namespace) is not applied - the
    module warns, naming the key and the reason, and writes its line commented out, so that
    C(systemd-sysctl) and C(sysctl --system) do not fail on it at boot. With O(missing=fail) it fails
    instead and names every such key.
  - The module owns O(path) entirely (root:root 0644) and rewrites it when its content differs.
  - A value the kernel refuses fails the module with the key, the value and the kernel's error.
options:
  settings:
    description:
      - Keys and their values. A key is dotted (V(net.ipv4.tcp_fin_timeout)) or slashed
        (V(net/ipv4/tcp_fin_timeout)); in the dotted form a slash stands for a dot inside a name
        (V(net.ipv4.conf.eth0/100.rp_filter)), as in sysctl.d(5).
      - A value is a number, a string (V(4096 87380 67108864)), a list of numbers or a boolean
        (written as V(1)/V(0)). A key whose value is C(null) is left out.
    type: dict
    required: true
  path:
    description: The sysctl.d file to write.
    type: path
    required: true
  apply:
    description: Also write the values to the running kernel (C(/proc/sys)).
    type: bool
    default: true
  missing:
    description:
      - What a key the running kernel does not have, or has read-only, does.
      - V(warn) - skip it with a warning and write it commented out.
      - V(fail) - fail and name every such key.
    type: str
    choices: [warn, fail]
    default: warn
  header:
    description: Comment lines at the top of the file (without the C(#)).
    type: list
    elements: str
    default: []
  proc_root:
    description: Where the kernel's sysctl tree is mounted (for tests).
    type: path
    default: /proc/sys
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the file and the running values and reports what would change.
  diff_mode:
    support: full
    details: The file's content, and the running values that change.
  platform:
    platforms: posix
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Kernel settings in their own file, applied now and at boot
  fleet.bgp.sysctl_file:
    path: /etc/sysctl.d/99-fleetbgp.conf
    settings:
      net.ipv4.tcp_fin_timeout: 30
      net.ipv4.tcp_rmem: [4096, 87380, 67108864]
      net.netfilter.nf_conntrack_max: 262144   # skipped with a warning without nf_conntrack
  register: sysctl

- name: Fail when a key cannot be applied
  fleet.bgp.sysctl_file:
    path: /etc/sysctl.d/90-strict.conf
    settings:
      net.core.somaxconn: 4096
    missing: fail
"""

RETURN = r"""
applied:
  description:
    - Keys whose running value was changed (in check mode, would be), with the value before and after.
  returned: always
  type: dict
  sample: {"net.ipv4.tcp_fin_timeout": {"before": "60", "after": "30"}}
skipped_keys:
  description: Keys that were not applied and are written commented out, with the reason.
  returned: always
  type: dict
  sample:
    net.netfilter.nf_conntrack_max: not in the running kernel (no /proc/sys/net/netfilter/nf_conntrack_max)
settings:
  description: Every key with its value as written to the file.
  returned: always
  type: dict
  sample: {"net.ipv4.tcp_fin_timeout": "30"}
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/sysctl.d/99-fleetbgp.conf
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_files import read_text, write_owned_file

KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+/-]*$")


def proc_path(key):
    """The /proc/sys relative path of a key, as systemd-sysctl and sysctl(8) read it: in the dotted
    form a slash stands for a literal dot (net.ipv4.conf.eth0/100.rp_filter); a key whose first
    separator is a slash is already a path (net/ipv4/conf/eth0.100/rp_filter)."""
    first = re.search(r"[./]", key)
    if first is None or first.group(0) == "/":
        return key
    return key.translate(str.maketrans({".": "/", "/": "."}))


def normalize(value):
    """A value as the kernel prints it, for comparison: fields separated by single spaces."""
    return " ".join(value.split())


def render_value(key, value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return " ".join(render_value(key, v) for v in value)
    text = to_native(value).strip()
    if "\n" in text or "\r" in text:
        raise ValueError("the value has a line break")
    return text


def conntrack_hint(key):
    if key.startswith("net.netfilter.nf_conntrack") or key.startswith("net/netfilter/nf_conntrack"):
        return (" Load the conntrack module (modprobe nf_conntrack; list it in /etc/modules-load.d/ "
                "for boot) and run the role again to apply it.")
    return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", required=True),
            path=dict(type="path", required=True),
            apply=dict(type="bool", default=True),
            missing=dict(type="str", choices=["warn", "fail"], default="warn"),
            header=dict(type="list", elements="str", default=[]),
            proc_root=dict(type="path", default="/proc/sys"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    proc_root = params["proc_root"]

    settings = {}
    errors = []
    for key in sorted(params["settings"]):
        value = params["settings"][key]
        if value is None:
            continue
        if not KEY_RE.match(key) or ".." in key or "//" in key or key.endswith((".", "/")):
            errors.append(f"{key!r} is not a sysctl key (expected e.g. net.ipv4.tcp_fin_timeout)")
            continue
        try:
            text = render_value(key, value)
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
            continue
        if not text:
            errors.append(f"{key}: empty value (set it to null to leave the key out)")
            continue
        settings[key] = text
    if errors:
        module.fail_json(msg="settings: " + "; ".join(errors))

    skipped = {}
    current = {}
    for key in settings:
        full = os.path.join(proc_root, proc_path(key))
        if not os.path.isfile(full):
            skipped[key] = f"not in the running kernel (no {full})"
            continue
        if not os.stat(full).st_mode & 0o222:
            skipped[key] = (f"read-only here ({full}: a per-host key seen from a container or network "
                            "namespace, or a key the kernel does not let change)")
            continue
        try:
            with open(full, encoding="utf-8") as f:
                current[key] = f.read()
        except OSError as exc:
            skipped[key] = f"cannot be read ({full}: {to_native(exc)})"

    if skipped and params["missing"] == "fail":
        module.fail_json(
            msg="sysctl keys the running kernel cannot take: "
            + "; ".join(f"{k}: {r}" for k, r in sorted(skipped.items())),
            skipped_keys=skipped,
        )
    for key, reason in sorted(skipped.items()):
        module.warn(f"sysctl {key}: {reason}; skipped, and written commented out in {path}."
                    + conntrack_hint(key))

    # the file
    lines = ["# " + h if h else "#" for h in params["header"]]
    for key, value in settings.items():
        if key in skipped:
            lines.append(f"# {key} = {value}    # skipped: {skipped[key].split(' (')[0]}")
        else:
            lines.append(f"{key} = {value}")
    content = "\n".join(lines) + "\n"
    before_content = read_text(path)
    diff = [dict(before_header=path, after_header=path, before=before_content or "", after=content)]
    file_changed = write_owned_file(module, path, content, before_content, prefix=".fleetbgp-sysctl.")

    # the running kernel
    applied = {}
    if params["apply"]:
        for key, value in settings.items():
            if key not in current or normalize(current[key]) == normalize(value):
                continue
            applied[key] = dict(before=normalize(current[key]), after=value)
            if module.check_mode:
                continue
            full = os.path.join(proc_root, proc_path(key))
            try:
                with open(full, "w", encoding="utf-8") as f:
                    f.write(value)
            except OSError as exc:
                module.fail_json(msg=f"sysctl {key} = {value}: the kernel refused it ({to_native(exc)})",
                                 applied=applied, skipped_keys=skipped)
            with open(full, encoding="utf-8") as f:
                now = normalize(f.read())
            if now != normalize(value):
                module.warn(f"sysctl {key}: wrote {value!r}, the kernel reads back {now!r} (it adjusted the "
                            f"value); set {now!r} to stop this task from reporting a change")
            applied[key]["after"] = now
        if applied:
            diff.append(dict(before_header="running kernel", after_header="running kernel",
                             before="".join(f"{k} = {v['before']}\n" for k, v in sorted(applied.items())),
                             after="".join(f"{k} = {settings[k]}\n" for k in sorted(applied))))

    module.exit_json(changed=bool(file_changed or applied), applied=applied,
                     skipped_keys=skipped, settings=settings, path=path, diff=diff)


if __name__ == "__main__":
    main()
