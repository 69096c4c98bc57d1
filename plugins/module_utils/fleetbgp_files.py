# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files a module owns entirely (fleet.bgp.sysctl_file's sysctl.d file, fleet.bgp.interface_addresses'
ownership record): read them, and write them atomically as root:root with a fixed mode."""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.common.text.converters import to_bytes


def read_text(path):
    """The file's content, or None when it cannot be read (absent)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def write_owned_file(module, path, content, before, mode=0o644, prefix=".fleetbgp."):
    """Make `path` hold `content` (`before` is its current content, None when absent) and be
    root:root (when the module runs as root: the owner is only ours to set then) with `mode`.
    The content goes to a temporary file in the same directory that then replaces `path` (a reader
    sees the old file or the new one, never half of one). Check mode changes nothing. Returns True
    when the content or the owner/mode changed (in check mode: would change)."""
    changed = before != content
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg=f"{path}: the directory {directory} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(to_bytes(content))
            os.chmod(tmp, mode)
            module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if os.path.exists(path):
        st = os.stat(path)
        as_root = os.geteuid() == 0
        if st.st_mode & 0o7777 != mode or (as_root and (st.st_uid, st.st_gid) != (0, 0)):
            changed = True
            if not module.check_mode:
                if as_root:
                    os.chown(path, 0, 0)
                os.chmod(path, mode)
    return changed
