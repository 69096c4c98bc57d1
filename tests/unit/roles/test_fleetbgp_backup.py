"""Offline tests of roles/backup/files/fleetbgp_backup.py, the tool behind fleet.bgp.backup: manifests,
checksums, encryption, damaged archives, apply (the swap) and retention, on a temporary tree.
The end-to-end behaviour on real hosts is tests/e2e/test_backup_restore.py."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[3] / "roles/backup/files/fleetbgp_backup.py"


def load_tool() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("fleetbgp_backup_tool", str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


fb = load_tool()
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def tree(tmp_path: Path) -> dict:
    """An /etc/fleetbgp-like tree and settings pointing at it."""
    etc = tmp_path / "etc/fleetbgp"
    (etc / "api").mkdir(parents=True)
    (etc / "fleetbgp.conf").write_text("neighbor 192.0.2.1 { local-as 65001; peer-as 65000; }\n")
    (etc / "secrets.env").write_text("FLEETBGP_MD5_192_0_2_1=s3cret-password\n")
    (etc / "api/announce.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(etc / "fleetbgp.conf", 0o640)
    os.chmod(etc / "secrets.env", 0o600)
    os.chmod(etc / "api/announce.sh", 0o755)
    unit = tmp_path / "systemd/fleetbgp.service"
    unit.parent.mkdir()
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    wants = tmp_path / "systemd/multi-user.target.wants"
    wants.mkdir()
    (wants / "fleetbgp.service").symlink_to(unit)
    key = tmp_path / "key"
    key.write_text("correct horse battery staple")
    cfg = dict(fb.DEFAULTS)
    cfg.update(dir=str(tmp_path / "backups"), paths=[str(etc), str(unit), str(tmp_path / "systemd/*.wants/fleetbgp.service")],
               encrypt=[str(etc / "secrets.env")], key_file="", keep_count=0, keep_days=0)
    return {"root": tmp_path, "etc": etc, "unit": unit, "wants": wants / "fleetbgp.service", "key": key, "cfg": cfg}


def rebuild(path: str, members: dict[str, bytes]) -> None:
    """Write an archive with these members and a matching .sha256 (a forged but self-consistent one)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    Path(path + ".sha256").write_text(f"{fb.sha256_file(path)}  {os.path.basename(path)}\n")


def members_of(path: str) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def test_create_verify_manifest(tree: dict) -> None:
    cfg = tree["cfg"]
    taken = fb.create(cfg, "manual")
    conf = str(tree["etc"] / "fleetbgp.conf")
    assert set(taken["files"]) == {conf, str(tree["etc"] / "secrets.env"), str(tree["etc"] / "api/announce.sh"),
                                   str(tree["unit"])}
    assert taken["path"] == os.path.join(cfg["dir"], taken["id"] + ".tar.gz")
    assert oct(os.stat(taken["path"]).st_mode & 0o777) == "0o600"
    info, manifest = fb.verify(cfg, "latest")[:2]
    assert info["id"] == taken["id"] and info["manifest_sha256"] == taken["manifest_sha256"]
    entries = {e["path"]: e for e in manifest["entries"]}
    assert entries[conf]["sha256"] == fb.sha256_file(conf)
    assert entries[conf]["mode"] == "0640"
    assert entries[str(tree["etc"] / "api")]["type"] == "dir"
    link = entries[str(tree["wants"])]
    assert (link["type"], link["target"]) == ("symlink", str(tree["unit"]))
    assert manifest["encryption"] == "none"


@needs_openssl
def test_encrypted_secrets_never_in_clear(tree: dict) -> None:
    cfg = {**tree["cfg"], "key_file": str(tree["key"])}
    taken = fb.create(cfg, "manual")
    raw = b"".join(members_of(taken["path"]).values())
    assert b"s3cret-password" not in raw
    secrets = str(tree["etc"] / "secrets.env")
    assert f"files{secrets}.enc" in members_of(taken["path"])
    staged = fb.stage(cfg, taken["id"], str(tree["root"] / "stage"))
    assert (Path(staged["stage"]) / ("files" + secrets)).read_text() == "FLEETBGP_MD5_192_0_2_1=s3cret-password\n"
    # The wrong key: openssl may or may not notice the bad padding; the manifest's sha256 always does.
    tree["key"].write_text("wrong key")
    with pytest.raises(fb.BackupError, match=r"openssl enc failed|wrong key"):
        fb.stage(cfg, taken["id"], str(tree["root"] / "stage2"))


def test_corrupted_archive_refused_by_its_checksum(tree: dict) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(fb.BackupError, match="corrupted or truncated"):
        fb.verify(cfg, "latest")


def test_truncated_archive_refused_when_read(tree: dict) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    Path(path + ".sha256").write_text(f"{fb.sha256_file(path)}  x\n")  # resealed: only reading can tell
    with pytest.raises(fb.BackupError, match="damaged or truncated"):
        fb.verify(cfg, "latest")


def test_missing_checksum_file_refused(tree: dict) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    os.unlink(path + ".sha256")
    with pytest.raises(fb.BackupError, match="missing or empty"):
        fb.verify(cfg, "latest")


def test_member_changed_behind_the_manifest_refused(tree: dict) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    members = members_of(path)
    conf_member = "files" + str(tree["etc"] / "fleetbgp.conf")
    members[conf_member] = b"neighbor 192.0.2.66 { }\n"
    rebuild(path, members)
    with pytest.raises(fb.BackupError, match=r"fleetbgp\.conf: sha256 mismatch"):
        fb.verify(cfg, "latest")


@pytest.mark.parametrize("evil", ["/etc/shadow", "{etc}/../../shadow"])
def test_paths_outside_the_backup_paths_refused(tree: dict, evil: str) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    members = members_of(path)
    manifest = json.loads(members[fb.MANIFEST])
    evil = evil.format(etc=tree["etc"])
    manifest["entries"].append({"path": evil, "type": "file", "owner": "root", "group": "root", "mode": "0644",
                                "size": 1, "sha256": fb.sha256_bytes(b"x"), "encrypted": False,
                                "member": "files" + evil})
    if evil == "/etc/shadow":
        manifest["roots"].append("/etc")  # a forged manifest widening its own roots
    members[fb.MANIFEST] = json.dumps(manifest).encode()
    members["files" + evil] = b"x"
    rebuild(path, members)
    with pytest.raises(fb.BackupError, match=r"outside this host's backup paths|normalised absolute path"):
        fb.verify(cfg, "latest")


def test_extra_member_refused(tree: dict) -> None:
    cfg = tree["cfg"]
    path = fb.create(cfg, "manual")["path"]
    members = members_of(path)
    members["files/tmp/dropped"] = b"surprise"
    rebuild(path, members)
    with pytest.raises(fb.BackupError, match="members not in the manifest"):
        fb.verify(cfg, "latest")


def test_apply_restores_content_modes_links_and_removes_extras(tree: dict) -> None:
    cfg = tree["cfg"]
    taken = fb.create(cfg, "manual")
    conf = tree["etc"] / "fleetbgp.conf"
    before = {p: fb.sha256_file(p) for p in taken["files"]}
    # Damage: config changed and chmodded, unit and its link deleted, a stray API program added.
    conf.write_text("broken\n")
    os.chmod(conf, 0o666)
    tree["unit"].unlink()
    tree["wants"].unlink()
    (tree["etc"] / "api/stray.sh").write_text("#!/bin/sh\n")
    stage = fb.stage(cfg, taken["id"], str(tree["root"] / "stage"))["stage"]
    result = fb.apply(stage)
    assert {p: fb.sha256_file(p) for p in taken["files"]} == before
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert os.readlink(tree["wants"]) == str(tree["unit"])
    assert not (tree["etc"] / "api/stray.sh").exists()
    assert str(tree["etc"] / "api/stray.sh") in result["removed"]
    assert str(conf) in result["changed"] and str(tree["unit"]) in result["changed"]
    # Nothing left to do the second time; no temporary files left behind.
    assert fb.apply(stage) == {"id": taken["id"], "changed": [], "removed": []}
    assert not list(tree["root"].rglob("*.fleetbgp-restore"))


def test_retention_by_count_and_age_keeps_the_newest(tree: dict) -> None:
    cfg = {**tree["cfg"], "keep_count": 3, "keep_days": 0}
    ids = [fb.create(cfg, "manual")["id"] for _i in range(5)]
    assert fb.list_ids(cfg) == ids[-3:]  # ids are unique even within one second, and sort by time
    # Age: everything older than a day goes, except the newest archive.
    old = time.time() - 3 * 86400
    for i in fb.list_ids(cfg):
        os.utime(fb.archive_path(cfg, i), (old, old))
    cfg = {**cfg, "keep_count": 0, "keep_days": 1}
    assert fb.prune_locked(cfg) == ids[-3:-1][::-1]
    assert fb.list_ids(cfg) == [ids[-1]]
    assert sorted(n for n in os.listdir(cfg["dir"]) if not n.startswith(".")) == [
        f"{ids[-1]}.tar.gz", f"{ids[-1]}.tar.gz.sha256"]


def test_latest_skips_pre_restore_snapshots(tree: dict) -> None:
    cfg = tree["cfg"]
    first = fb.create(cfg, "manual")["id"]
    snap = fb.create(cfg, "pre-restore")["id"]
    assert snap.endswith("-pre-restore")
    assert fb.resolve_id(cfg, "latest") == first
    assert fb.resolve_id(cfg, snap) == snap
    with pytest.raises(fb.BackupError, match="no backup 'nope'"):
        fb.resolve_id(cfg, "nope")
    with pytest.raises(fb.BackupError, match="not a backup id"):
        fb.resolve_id(cfg, "../../etc/passwd")


def test_cli_json_error(tree: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({k: tree["cfg"][k] for k in ("dir", "paths", "encrypt", "key_file")}))
    assert fb.main(["--config", str(settings), "--json", "verify", "latest"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "no backup" in out["error"]
    assert fb.main(["--config", str(settings), "--json", "create"]) == 0
    created = json.loads(capsys.readouterr().out)["result"]
    assert fb.main(["--config", str(settings), "--json", "verify", created["id"]]) == 0
    settings.write_text(json.dumps({"dir": "relative/path", "paths": ["etc"]}))
    assert fb.main(["--config", str(settings), "list"]) == 2
    assert "not an absolute path" in capsys.readouterr().err
