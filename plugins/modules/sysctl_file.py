#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sysctl_file
short_description: Write a sysctl.d file and apply it, skipping the keys the running kernel lacks
version_added: 0.2.0
description:
  - Writes O(settings) to O(path), one C(key = value) line per key in key order, and writes each
    value to C(/proc/sys) when the running value differs. The role C(fleet.bgp.sysctl) uses it; use
    the role unless you need another file.
  - A key whose C(/proc/sys) file does not exist (a kernel module not loaded, an older kernel) or is
    read-only (a per-host key seen from a container or a network namespace) is not applied - the
    module warns, naming the key and the reason, and writes its line commented out, so that
    C(systemd-sysctl) and C(sysctl --system) do not fail on it at boot. With O(missing=fail) it fails
    instead and names every such key.
  - A key whose running value differs but cannot be written now - C(/proc/sys) is mounted read-only
    (most container runtimes do that, and some hardened hosts), or its file is not writable by the
    user the module runs as - is found before anything is written. By default (O(proc_read_only=fail))
    the module fails, names every such key with its running and wanted value and the reason, and
    changes nothing - neither the file nor the kernel - as C(ansible.posix.sysctl) fails when it cannot
    set a value. With O(proc_read_only=file_only) it writes the file (the keys uncommented, for the
    next boot where C(/proc/sys) is writable), applies the keys it can, warns about the others and
    returns them in RV(not_applied). A key whose running value is already the wanted one needs no
    write and is fine on a read-only C(/proc/sys).
  - The module owns O(path) entirely (root:root 0644) and rewrites it when its content differs.
  - The values are written to the kernel before the file. A value the kernel refuses fails the module
    with the key, the value and the kernel's error; the file is then not written (so it never holds a
    value that would fail at boot), and the keys before it in key order stay applied (RV(applied)).
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
  proc_read_only:
    description:
      - What a key does whose running value differs from the wanted one but cannot be written now,
        because C(/proc/sys) (the key's file) is on a read-only mount, or the file is not writable by
        the user the module runs as. Checked for every key before the file or any value is written.
      - V(fail) - fail, name every such key (running and wanted value, reason), change nothing.
      - V(file_only) - write the file with the key (uncommented, so it applies at the next boot where
        C(/proc/sys) is writable), do not apply it, warn and return it in RV(not_applied).
      - O(apply=false) never touches C(/proc/sys) and so never meets this.
    type: str
    choices: [fail, file_only]
    default: fail
    version_added: 0.2.0
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

- name: On a host whose /proc/sys may be read-only (a container), write the file for the next boot anyway
  fleet.bgp.sysctl_file:
    path: /etc/sysctl.d/99-fleetbgp.conf
    settings:
      net.ipv4.tcp_fin_timeout: 30
    proc_read_only: file_only
  register: sysctl   # sysctl.not_applied names the keys the running kernel did not get
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
not_applied:
  description:
    - Keys whose running value differs from the wanted one and was not written to the kernel because
      C(/proc/sys) is read-only here (or the key's file is not writable by this user), with the reason.
      Only with O(proc_read_only=file_only) (V(fail) fails instead, with the same keys in the result);
      the file holds them uncommented. Empty when every key is applied.
  returned: always
  type: dict
  version_added: 0.2.0
  sample:
    net.ipv4.tcp_fin_timeout: >-
      running 60, wanted 30 - /proc/sys is mounted read-only here
      (/proc/sys/net/ipv4/tcp_fin_timeout is on a read-only mount)
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


def write_blocker(proc_root, full):
    """Why the running value in `full` cannot be written now, or None. Asked before anything is
    written: a write that fails half-way would leave the file and the kernel disagreeing. The mode
    of a file on a read-only mount stays 0644, so the mount flags are what tell."""
    try:
        if os.statvfs(full).f_flag & os.ST_RDONLY:
            return f"{proc_root} is mounted read-only here ({full} is on a read-only mount)"
    except OSError:
        pass
    # access(2) also answers EROFS, and EACCES for a file owned by a user we cannot write for (a
    # per-host key seen from a user namespace belongs to nobody:nogroup, mode 0644)
    if not os.access(full, os.W_OK):
        return f"{full} is not writable by this user (uid {os.getuid()}; run with become)"
    return None


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
            proc_read_only=dict(type="str", choices=["fail", "file_only"], default="fail"),
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

    # Which of the values to apply can be written, found before the file or any value is written.
    to_apply = {}
    not_applied = {}
    if params["apply"]:
        for key, value in settings.items():
            if key not in current or normalize(current[key]) == normalize(value):
                continue
            blocker = write_blocker(proc_root, os.path.join(proc_root, proc_path(key)))
            if blocker is None:
                to_apply[key] = value
            else:
                not_applied[key] = f"running {normalize(current[key])}, wanted {value} - {blocker}"
    if not_applied and params["proc_read_only"] == "fail":
        module.fail_json(
            msg=f"sysctl: {len(not_applied)} key(s) cannot be applied to the running kernel: "
            + "; ".join(f"{k}: {r}" for k, r in sorted(not_applied.items()))
            + f". Nothing was changed ({path} and the kernel are untouched). Apply them where /proc/sys is "
            "writable (the host itself, not a container), or write the file only: proc_read_only=file_only "
            "(the keys then apply at the next boot) or apply=false.",
            not_applied=not_applied, skipped_keys=skipped, applied={},
        )
    for key, reason in sorted(not_applied.items()):
        module.warn(f"sysctl {key}: not applied to the running kernel ({reason}); written to {path} only, "
                    "for the next boot where /proc/sys is writable.")

    # The running kernel first: a value it refuses must not reach the file (systemd-sysctl would fail
    # on it at every boot). So the file's directory is checked now, not after the kernel has changed.
    directory = os.path.dirname(path) or "."
    if to_apply and not module.check_mode and not os.path.isdir(directory):
        module.fail_json(msg=f"{path}: the directory {directory} does not exist. Nothing was changed.")
    applied = {}
    for key, value in to_apply.items():
        applied[key] = dict(before=normalize(current[key]), after=value)
        if module.check_mode:
            continue
        full = os.path.join(proc_root, proc_path(key))
        try:
            with open(full, "w", encoding="utf-8") as f:
                f.write(value)
        except OSError as exc:
            del applied[key]
            module.fail_json(msg=f"sysctl {key} = {value}: the kernel refused it ({to_native(exc)}). "
                             f"{path} was not written; the keys before it (applied) are set in the "
                             "running kernel.",
                             changed=bool(applied), applied=applied, skipped_keys=skipped,
                             not_applied=not_applied)
        with open(full, encoding="utf-8") as f:
            now = normalize(f.read())
        if now != normalize(value):
            module.warn(f"sysctl {key}: wrote {value!r}, the kernel reads back {now!r} (it adjusted the "
                        f"value); set {now!r} to stop this task from reporting a change")
        applied[key]["after"] = now

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
    if applied:
        diff.append(dict(before_header="running kernel", after_header="running kernel",
                         before="".join(f"{k} = {v['before']}\n" for k, v in sorted(applied.items())),
                         after="".join(f"{k} = {settings[k]}\n" for k in sorted(applied))))

    module.exit_json(changed=bool(file_changed or applied), applied=applied, not_applied=not_applied,
                     skipped_keys=skipped, settings=settings, path=path, diff=diff)


if __name__ == "__main__":
    main()
