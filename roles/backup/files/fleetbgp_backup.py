# fleetbgp-backup: backups of a fleetbgp host's agent files, installed by the fleet.bgp.backup role
# as /usr/local/sbin/fleetbgp-backup (the role adds the #! line: fleet_bgp_backup_python). Python 3
# standard library only (plus `openssl` when archives are encrypted).
# docs/operations/backup-restore.md describes it for operators.
#
#   fleetbgp-backup create [--kind manual|scheduled|pre-restore]   take one backup, apply retention
#   fleetbgp-backup list                                            archives, newest last
#   fleetbgp-backup verify ID|latest                                archive checksum + every file's sha256
#   fleetbgp-backup stage ID|latest DIR                             verify, extract (and decrypt) into DIR
#   fleetbgp-backup apply DIR                                       put DIR's files in place (after stage)
#   fleetbgp-backup prune                                           retention only
# Every command takes --config FILE (default /etc/fleetbgp-backup/backup.json) and --json.
#
# An archive ID.tar.gz holds MANIFEST.json (every path with type, owner, group, mode, size and
# sha256) and files/<absolute path>; ID.tar.gz.sha256 next to it holds the archive's own sha256.
# With a key file, the paths listed in "encrypt" are stored encrypted (openssl enc -aes-256-cbc
# -pbkdf2, the key passed as -pass file:KEYFILE, never on the command line); the manifest keeps the
# sha256 of the clear text, checked after decryption.
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import fnmatch
import glob
import grp
import hashlib
import io
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import PurePosixPath

# Python >= 3.8 on the host (Ubuntu 22.04 has 3.10): no datetime.UTC.
UTC = dt.timezone.utc  # noqa: UP017
FORMAT = 1
DEFAULT_CONFIG = "/etc/fleetbgp-backup/backup.json"
DEFAULTS: dict = {
    "dir": "/var/backups/fleetbgp",
    "paths": [
        "/etc/fleetbgp",
        "/etc/systemd/system/fleetbgp.service",
        "/etc/systemd/system/fleetbgp.service.d",
        "/etc/systemd/system/*.wants/fleetbgp.service",
        "/var/lib/fleetbgp",
    ],
    "encrypt": ["/etc/fleetbgp/secrets.env"],
    "key_file": "",
    "keep_count": 14,
    "keep_days": 30,
}
CIPHER = ["-aes-256-cbc", "-pbkdf2", "-iter", "200000", "-md", "sha256"]
ENCRYPTION = "openssl-aes-256-cbc-pbkdf2-sha256-200000"
MANIFEST = "MANIFEST.json"
SUFFIX = ".tar.gz"


class BackupError(Exception):
    """A failure with a message for the operator; exit status 2."""


# --- helpers ------------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def owner_names(st: os.stat_result) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


def resolve_ids(user: str, group: str) -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        if not user.isdigit():
            raise BackupError(f"user {user!r} of the archive does not exist on this host") from None
        uid = int(user)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        if not group.isdigit():
            raise BackupError(f"group {group!r} of the archive does not exist on this host") from None
        gid = int(group)
    return uid, gid


def load_config(path: str) -> dict:
    cfg = dict(DEFAULTS)
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise BackupError(f"{path}: cannot read the settings: {exc}") from None
        if not isinstance(data, dict):
            raise BackupError(f"{path}: the settings must be a JSON object")
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise BackupError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        cfg.update(data)
    if not isinstance(cfg["dir"], str) or not cfg["dir"].startswith("/"):
        raise BackupError(f"{path}: dir: {cfg['dir']!r} is not an absolute path")
    for key in ("paths", "encrypt"):
        for p in cfg[key]:
            if not isinstance(p, str) or not p.startswith("/") or ".." in PurePosixPath(p).parts:
                raise BackupError(f"{path}: {key}: {p!r} is not an absolute path without '..'")
    return cfg


def under_roots(path: str, roots: list[str]) -> bool:
    """True when PATH is one of the roots (a glob pattern matches too) or inside a root directory."""
    pp = PurePosixPath(path)
    for root in roots:
        if PurePosixPath(root) == pp or fnmatch.fnmatchcase(path, root):
            return True
        if not glob.has_magic(root) and PurePosixPath(root) in pp.parents:
            return True
    return False


def member_name(path: str, encrypted: bool) -> str:
    return "files" + path + (".enc" if encrypted else "")


def archive_path(cfg: dict, backup_id: str) -> str:
    return os.path.join(cfg["dir"], backup_id + SUFFIX)


def list_ids(cfg: dict) -> list[str]:
    try:
        names = os.listdir(cfg["dir"])
    except FileNotFoundError:
        return []
    return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and not n.startswith("."))


def resolve_id(cfg: dict, wanted: str) -> str:
    ids = list_ids(cfg)
    if wanted == "latest":
        regular = [i for i in ids if not i.endswith("-pre-restore")]
        if not regular:
            raise BackupError(f"no backup in {cfg['dir']} (take one: fleetbgp-backup create)")
        return regular[-1]
    if "/" in wanted or wanted.startswith(".") or not wanted:
        raise BackupError(f"{wanted!r} is not a backup id (see: fleetbgp-backup list)")
    if wanted.endswith(SUFFIX):
        wanted = wanted[: -len(SUFFIX)]
    if wanted not in ids:
        raise BackupError(f"no backup {wanted!r} in {cfg['dir']} (have: {', '.join(ids[-5:]) or 'none'})")
    return wanted


@contextlib.contextmanager
def locked(cfg: dict):
    os.makedirs(cfg["dir"], mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(cfg["dir"], ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def openssl(args: list[str], data: bytes, key_file: str) -> bytes:
    if not key_file or not os.path.isfile(key_file):
        raise BackupError(f"key file {key_file or '(none)'} not found: it is needed to encrypt or decrypt")
    proc = subprocess.run(["openssl", "enc", *args, *CIPHER, "-pass", "file:" + key_file],
                          input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError("openssl enc failed: " + (err[0] if err else f"exit {proc.returncode}"))
    return proc.stdout


# --- create -------------------------------------------------------------------------------------
def collect(cfg: dict) -> list[str]:
    """Every existing path the settings name (directories recursively), sorted, no duplicates."""
    found: set[str] = set()
    for pattern in cfg["paths"]:
        for top in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
            if not os.path.lexists(top):
                continue
            found.add(os.path.normpath(top))
            if os.path.isdir(top) and not os.path.islink(top):
                for root, dirs, files in os.walk(top):
                    for name in dirs + files:
                        found.add(os.path.join(root, name))
    return sorted(found)


def new_id(cfg: dict, kind: str) -> str:
    """UTC time to the millisecond (ids sort by time), unique in the directory."""
    suffix = "-pre-restore" if kind == "pre-restore" else ""
    existing = set(list_ids(cfg))
    while True:
        now = dt.datetime.now(UTC)
        candidate = now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z" + suffix
        if candidate not in existing:
            return candidate
        time.sleep(0.001)


def create(cfg: dict, kind: str) -> dict:
    with locked(cfg):
        backup_id = new_id(cfg, kind)
        key_file = cfg["key_file"]
        encrypt = bool(key_file)
        entries: list[dict] = []
        blobs: dict[str, bytes] = {}
        for path in collect(cfg):
            st = os.lstat(path)
            user, group = owner_names(st)
            entry: dict = {"path": path, "owner": user, "group": group,
                           "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
            if stat.S_ISLNK(st.st_mode):
                entry.update(type="symlink", target=os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entry["type"] = "dir"
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    data = f.read()
                enc = encrypt and under_roots(path, cfg["encrypt"])
                entry.update(type="file", size=len(data), sha256=sha256_bytes(data), encrypted=enc,
                             member=member_name(path, enc))
                if enc:
                    data = openssl(["-e", "-salt"], data, key_file)
                    entry["member_sha256"] = sha256_bytes(data)
                blobs[entry["member"]] = data
            else:
                continue  # sockets, fifos, devices: not configuration
            entries.append(entry)
        manifest = {
            "format": FORMAT, "tool": "fleetbgp-backup", "id": backup_id, "host": socket.gethostname(),
            "created": dt.datetime.now(UTC).isoformat(timespec="seconds"), "kind": kind,
            "encryption": ENCRYPTION if encrypt else "none", "roots": list(cfg["paths"]),
            "entries": entries,
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
        final = archive_path(cfg, backup_id)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=cfg["dir"])
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                add_member(tar, MANIFEST, manifest_bytes, 0o600)
                for name, data in blobs.items():
                    add_member(tar, name, data, 0o600)
            digest = sha256_file(tmp)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with open(final + ".sha256.tmp", "w", encoding="ascii") as f:
            f.write(f"{digest}  {backup_id}{SUFFIX}\n")
        os.chmod(final + ".sha256.tmp", 0o600)
        os.replace(final + ".sha256.tmp", final + ".sha256")
        removed = prune_locked(cfg, keep=backup_id)
    return {"id": backup_id, "path": final, "sha256": digest, "manifest_sha256": sha256_bytes(manifest_bytes),
            "files": [e["path"] for e in entries if e["type"] == "file"], "kind": kind,
            "encrypted": encrypt, "pruned": removed}


def add_member(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(dt.datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


# --- retention ----------------------------------------------------------------------------------
def prune_locked(cfg: dict, keep: str | None = None) -> list[str]:
    """Delete archives beyond keep_count (newest kept) or older than keep_days; never the newest
    one, never KEEP. 0 disables a limit."""
    ids = list_ids(cfg)
    count, days = int(cfg["keep_count"]), float(cfg["keep_days"])
    now = dt.datetime.now(UTC).timestamp()
    removed = []
    for index, backup_id in enumerate(reversed(ids)):  # newest first
        if index == 0 or backup_id == keep:
            continue
        path = archive_path(cfg, backup_id)
        too_many = count > 0 and index >= count
        too_old = days > 0 and now - os.stat(path).st_mtime > days * 86400
        if too_many or too_old:
            for p in (path, path + ".sha256"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
            removed.append(backup_id)
    return removed


# --- verify / stage -----------------------------------------------------------------------------
def read_archive(path: str) -> dict[str, bytes]:
    """Every member of the archive, read in full (a truncated gzip stream fails here)."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for info in tar:
                if not info.isfile():
                    raise BackupError(f"member {info.name!r} is not a regular file")
                if info.name in members:
                    raise BackupError(f"member {info.name!r} appears twice")
                f = tar.extractfile(info)
                members[info.name] = f.read() if f else b""
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BackupError(f"the archive is damaged or truncated ({type(exc).__name__}: {exc})") from None
    return members


def check_manifest(manifest: object, members: dict[str, bytes]) -> list[str]:
    """Problems with the manifest against the members (empty list: all good)."""
    if not isinstance(manifest, dict):
        return ["MANIFEST.json is not a JSON object"]
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"MANIFEST.json format {manifest.get('format')!r}, this tool reads {FORMAT}")
    roots = manifest.get("roots")
    entries = manifest.get("entries")
    if not isinstance(roots, list) or not isinstance(entries, list):
        return [*problems, "MANIFEST.json has no roots/entries lists"]
    expected_members = {MANIFEST}
    seen = set()
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("path"), str):
            problems.append(f"bad manifest entry {e!r}")
            continue
        path = e["path"]
        if (not path.startswith("/") or ".." in PurePosixPath(path).parts
                or os.path.normpath(path) != path or not under_roots(path, roots)):
            problems.append(f"{path}: not a normalised absolute path under the archive's roots")
            continue
        if path in seen:
            problems.append(f"{path}: listed twice")
        seen.add(path)
        kind = e.get("type")
        if kind == "file":
            member = e.get("member")
            want = e.get("member_sha256") if e.get("encrypted") else e.get("sha256")
            if member != member_name(path, bool(e.get("encrypted"))):
                problems.append(f"{path}: unexpected member name {member!r}")
                continue
            expected_members.add(member)
            if member not in members:
                problems.append(f"{path}: missing from the archive")
            elif sha256_bytes(members[member]) != want:
                problems.append(f"{path}: sha256 mismatch (archive {sha256_bytes(members[member])[:12]}, "
                                f"manifest {str(want)[:12]})")
            elif not e.get("encrypted") and len(members[member]) != e.get("size"):
                problems.append(f"{path}: size mismatch")
        elif kind == "symlink":
            if not isinstance(e.get("target"), str):
                problems.append(f"{path}: symlink without a target")
        elif kind != "dir":
            problems.append(f"{path}: unknown type {kind!r}")
        mode = e.get("mode")
        if not (isinstance(mode, str) and len(mode) == 4 and all(c in "01234567" for c in mode)):
            problems.append(f"{path}: bad mode {mode!r}")
    extra = sorted(set(members) - expected_members)
    if extra:
        problems.append(f"members not in the manifest: {', '.join(extra[:5])}")
    return problems


def verify(cfg: dict, wanted: str) -> tuple[dict, dict, dict[str, bytes]]:
    backup_id = resolve_id(cfg, wanted)
    path = archive_path(cfg, backup_id)
    side = path + ".sha256"
    try:
        with open(side, encoding="ascii") as f:
            recorded = f.read().split()[0].lower()
    except (OSError, IndexError, UnicodeDecodeError):
        raise BackupError(f"{side} is missing or empty: the archive cannot be checked") from None
    actual = sha256_file(path)
    if actual != recorded:
        raise BackupError(f"{path}: sha256 {actual[:16]}... differs from {side} ({recorded[:16]}...): "
                          "the archive is corrupted or truncated")
    members = read_archive(path)
    if MANIFEST not in members:
        raise BackupError(f"{path}: no {MANIFEST} in the archive")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as exc:
        raise BackupError(f"{path}: {MANIFEST} is not valid JSON: {exc}") from None
    problems = check_manifest(manifest, members)
    if not problems:
        outside = [e["path"] for e in manifest["entries"] if not under_roots(e["path"], cfg["paths"])]
        if outside:
            problems.append(f"paths outside this host's backup paths ({', '.join(cfg['paths'])}): "
                            + ", ".join(outside[:5]))
    if problems:
        raise BackupError(f"{path}: {len(problems)} problem(s): " + "; ".join(problems[:5]))
    if manifest.get("id") != backup_id:
        raise BackupError(f"{path}: the manifest names backup {manifest.get('id')!r}, not {backup_id!r}")
    info = {"id": backup_id, "path": path, "sha256": actual,
            "manifest_sha256": sha256_bytes(members[MANIFEST]),
            "created": manifest.get("created"), "kind": manifest.get("kind"), "host": manifest.get("host"),
            "encrypted": manifest.get("encryption") != "none",
            "files": [e["path"] for e in manifest["entries"] if e["type"] == "file"]}
    return info, manifest, members


def stage(cfg: dict, wanted: str, dest: str) -> dict:
    info, manifest, members = verify(cfg, wanted)
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest, mode=0o700)
    os.chmod(dest, 0o700)
    root = os.path.join(dest, "files")
    for e in manifest["entries"]:
        target = root + e["path"]
        if e["type"] == "dir":
            os.makedirs(target, mode=0o700, exist_ok=True)
        elif e["type"] == "file":
            data = members[e["member"]]
            if e.get("encrypted"):
                data = openssl(["-d"], data, cfg["key_file"])
                if sha256_bytes(data) != e["sha256"]:
                    raise BackupError(f"{e['path']}: decrypted content does not match the manifest "
                                      "(wrong key?)")
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    with open(os.path.join(dest, MANIFEST), "wb") as f:
        f.write(members[MANIFEST])
    info["stage"] = dest
    return info


# --- apply --------------------------------------------------------------------------------------
def current_paths(roots: list[str]) -> list[str]:
    return collect({"paths": roots})


def same_file(e: dict, path: str) -> bool:
    """True when PATH already is what the manifest entry E describes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if e["type"] == "symlink":  # a symlink's own owner and mode do not matter
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == e["target"]
    if owner_names(st) != (e["owner"], e["group"]) or f"{stat.S_IMODE(st.st_mode):04o}" != e["mode"]:
        return False
    if e["type"] == "dir":
        return stat.S_ISDIR(st.st_mode)
    return stat.S_ISREG(st.st_mode) and st.st_size == e["size"] and sha256_file(path) == e["sha256"]


def apply(stage_dir: str) -> dict:
    """Make the host's files under the manifest's roots equal to the staged backup: each file is
    written next to its target and renamed over it; paths under the roots that the backup does not
    have are removed."""
    try:
        with open(os.path.join(stage_dir, MANIFEST), "rb") as f:
            manifest = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{stage_dir}: no usable {MANIFEST} (run stage first): {exc}") from None
    roots = manifest["roots"]
    wanted = {e["path"]: e for e in manifest["entries"]}
    changed: list[str] = []
    removed: list[str] = []
    for e in sorted(manifest["entries"], key=lambda x: (x["path"].count("/"), x["path"])):
        path = e["path"]
        if same_file(e, path):
            continue
        uid, gid = resolve_ids(e["owner"], e["group"])
        mode = int(e["mode"], 8)
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        if e["type"] == "dir":
            if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
                os.unlink(path)
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        else:
            tmp = os.path.join(parent, f".{os.path.basename(path)}.fleetbgp-restore")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if e["type"] == "symlink":
                os.symlink(e["target"], tmp)
                os.lchown(tmp, uid, gid)
            else:
                shutil.copyfile(stage_dir + "/files" + path, tmp)
                os.chown(tmp, uid, gid)
                os.chmod(tmp, mode)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            os.replace(tmp, path)
        changed.append(path)
    for path in sorted(current_paths(roots), key=lambda p: -p.count("/")):
        if path in wanted:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        removed.append(path)
    return {"id": manifest.get("id"), "changed": changed, "removed": removed}


# --- CLI ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetbgp-backup",
                                     description="Backups of the fleetbgp agent's files")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"settings (default {DEFAULT_CONFIG})")
    parser.add_argument("--dir", help="archive directory (overrides the settings)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("create", help="take a backup now, then apply retention")
    p.add_argument("--kind", choices=["manual", "scheduled", "pre-restore"], default="manual")
    sub.add_parser("list", help="list the archives, newest last")
    p = sub.add_parser("verify", help="check an archive and every file's sha256")
    p.add_argument("id")
    p = sub.add_parser("stage", help="verify, then extract (and decrypt) into DIR")
    p.add_argument("id")
    p.add_argument("dest")
    p = sub.add_parser("apply", help="put a staged backup's files in place")
    p.add_argument("stage_dir")
    sub.add_parser("prune", help="apply retention only")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.dir:
            cfg["dir"] = args.dir
        if args.cmd == "create":
            result: object = create(cfg, args.kind)
        elif args.cmd == "list":
            result = [{"id": i, "path": archive_path(cfg, i)} for i in list_ids(cfg)]
        elif args.cmd == "verify":
            result = verify(cfg, args.id)[0]
        elif args.cmd == "stage":
            result = stage(cfg, args.id, args.dest)
        elif args.cmd == "apply":
            result = apply(args.stage_dir)
        else:
            with locked(cfg):
                result = {"pruned": prune_locked(cfg)}
    except BackupError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"fleetbgp-backup {args.cmd}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": True, "result": result}, indent=1))
    elif args.cmd == "list":
        for item in result:  # type: ignore[union-attr]
            print(item["id"])
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
