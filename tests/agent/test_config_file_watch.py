"""ConfigFileWatch: the config file on disk against the hash of the running config, on real files;
re-hashed only when the file's stat changed."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from fleetbgp.config_file_watch import DIFFERS, MISSING, SAME, UNREADABLE, ConfigFileWatch


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "fleetbgp.conf"
    path.write_text("neighbor 192.0.2.1 { }\n")
    return path


def test_the_loaded_file_is_same_and_an_edit_differs(conf: Path) -> None:
    watch = ConfigFileWatch()
    running = sha("neighbor 192.0.2.1 { }\n")
    assert watch.state(str(conf), running) == SAME
    conf.write_text("neighbor 192.0.2.2 { }\n")  # same size, new mtime/ctime
    assert watch.state(str(conf), running) == DIFFERS
    # the agent reloads it: the running hash is the file's again
    assert watch.state(str(conf), sha("neighbor 192.0.2.2 { }\n")) == SAME


def test_a_deploy_by_rename_is_seen(conf: Path, tmp_path: Path) -> None:
    """Ansible's template/copy write a temporary file and rename it over the config: a new inode."""
    watch = ConfigFileWatch()
    running = sha(conf.read_text())
    assert watch.state(str(conf), running) == SAME
    new = tmp_path / ".fleetbgp.conf.tmp"
    new.write_text("neighbor 192.0.2.3 { }\n")
    os.replace(new, conf)
    assert watch.state(str(conf), running) == DIFFERS


def test_an_unchanged_file_is_hashed_once(conf: Path) -> None:
    watch = ConfigFileWatch()
    running = sha(conf.read_text())
    for _ in range(5):
        assert watch.state(str(conf), running) == SAME
    assert watch.hashed == 1
    # a reload (another running hash) needs no read either: the file's hash is what is cached
    assert watch.state(str(conf), sha("other")) == DIFFERS
    assert watch.hashed == 1


def test_a_touch_alone_rehashes_and_stays_same(conf: Path) -> None:
    watch = ConfigFileWatch()
    running = sha(conf.read_text())
    assert watch.state(str(conf), running) == SAME
    st = conf.stat()
    os.utime(conf, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert watch.state(str(conf), running) == SAME
    assert watch.hashed == 2


def test_a_removed_file_is_missing_and_coming_back_is_seen(conf: Path) -> None:
    watch = ConfigFileWatch()
    text = conf.read_text()
    assert watch.state(str(conf), sha(text)) == SAME
    conf.unlink()
    assert watch.state(str(conf), sha(text)) == MISSING
    conf.write_text(text)
    assert watch.state(str(conf), sha(text)) == SAME


def test_a_path_that_cannot_be_read_is_unreadable(tmp_path: Path) -> None:
    """A directory where the file should be: open() fails even for root (the tests may run as root,
    for whom a mode 000 file is still readable)."""
    (tmp_path / "fleetbgp.conf").mkdir()
    assert ConfigFileWatch().state(str(tmp_path / "fleetbgp.conf"), sha("x")) == UNREADABLE


def test_a_missing_directory_is_missing_too(tmp_path: Path) -> None:
    assert ConfigFileWatch().state(str(tmp_path / "gone" / "fleetbgp.conf"), sha("x")) == MISSING


def test_nothing_to_compare_without_a_path_or_a_running_hash(conf: Path) -> None:
    watch = ConfigFileWatch()
    assert watch.state("", sha("x")) is None
    assert watch.state(str(conf), "") is None
    assert watch.hashed == 0


def test_another_path_is_not_answered_from_the_cache(conf: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.conf"
    other.write_text(conf.read_text())
    os.utime(other, ns=(conf.stat().st_atime_ns, conf.stat().st_mtime_ns))
    watch = ConfigFileWatch()
    running = sha(conf.read_text())
    assert watch.state(str(conf), running) == SAME
    other.write_text("changed\n")
    assert watch.state(str(other), running) == DIFFERS


def test_concurrent_scrapes_agree(conf: Path) -> None:
    watch = ConfigFileWatch()
    running = sha(conf.read_text())
    results: list[str | None] = []

    def scrape() -> None:
        for _ in range(50):
            results.append(watch.state(str(conf), running))

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [SAME] * 200
    assert watch.hashed == 1


def test_a_file_written_while_it_is_read_is_read_again(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy writing in place during the read: that hash may be of half a file, so it is not
    cached; the next scrape reads the finished file."""
    from fleetbgp import config_file_watch

    real = hashlib.file_digest
    finished = "neighbor 192.0.2.9 { }\n# written while being read\n"

    def digest_while_written(fh, name):  # type: ignore[no-untyped-def]
        result = real(fh, name)
        conf.write_text(finished)
        return result

    watch = ConfigFileWatch()
    monkeypatch.setattr(config_file_watch.hashlib, "file_digest", digest_while_written)
    watch.state(str(conf), sha(finished))
    monkeypatch.setattr(config_file_watch.hashlib, "file_digest", real)
    assert watch.state(str(conf), sha(finished)) == SAME
    assert watch.hashed == 2
