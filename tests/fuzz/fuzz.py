"""The long fuzz run: coverage-guided (atheris, libFuzzer's engine) over the same targets as the
bounded run in `make test`.

    make fuzz FUZZ_SECONDS=600 [FUZZ_TARGETS="config api_commands"] [FUZZ_JOBS=2]
    .venv/bin/python tests/fuzz/fuzz.py --seconds 600 config api_commands

Each target runs in its own process for FUZZ_SECONDS, starting from tests/fuzz/corpus/TARGET/ plus
what earlier runs found (.cache/fuzz/corpus/TARGET/). At the end the inputs that reach new code are
merged into tests/fuzz/corpus/TARGET/ (commit them), a crash is saved as
.cache/fuzz/crashes/TARGET/crash-SHA1 (reproduce: `tests/fuzz/fuzz.py --repro FILE TARGET`), and
a summary line per target gives inputs run, exec/s, new corpus entries and crashes
(docs/dev/fuzzing.md).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache" / "fuzz"
sys.path[:0] = [str(ROOT / "agent" / "src"), str(HERE)]

RSS_LIMIT_MB = 2048   # a parser that needs more for one input is a blow-up
TIMEOUT = 10          # seconds for one input (libFuzzer's -timeout)


def _dict_entry(word: bytes) -> str:
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}"
                         for b in word) + '"'


def _write_dict(name: str, words: tuple[bytes, ...]) -> Path | None:
    usable = [w for w in words if 0 < len(w) <= 64]  # libFuzzer's limit for one dictionary word
    if not usable:
        return None
    path = CACHE / f"{name}.dict"
    path.write_text("".join(_dict_entry(w) + "\n" for w in usable))
    return path


def run_target(name: str, seconds: int) -> int:
    """In a child process: fuzz one target until the time is up or it crashes (never returns)."""
    import atheris

    with atheris.instrument_imports(include=["fleetbgp"]):
        import fuzz_targets
    target = fuzz_targets.TARGETS[name]
    work = CACHE / "corpus" / name
    crashes = CACHE / "crashes" / name
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], str(work), str(HERE / "corpus" / name), f"-max_total_time={seconds}",
            f"-timeout={TIMEOUT}", f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={target.max_len}",
            f"-artifact_prefix={crashes}/", "-print_final_stats=1"]
    dictionary = _write_dict(name, target.dictionary)
    if dictionary is not None:
        args.append(f"-dict={dictionary}")
    atheris.Setup(args, target.run)
    atheris.Fuzz()
    return 0


def merge(name: str, libfuzzer_args: list[str]) -> int:
    """Inputs of the work corpus that reach code the checked-in corpus does not: copied into it.
    libFuzzer runs the merge in child processes of argv[0] (with its own flags after ours), so
    argv[0] is a small script that comes back here."""
    import atheris

    with atheris.instrument_imports(include=["fleetbgp"]):
        import fuzz_targets
    target = fuzz_targets.TARGETS[name]
    again = CACHE / f"merge-{name}.sh"
    if not libfuzzer_args:
        again.write_text(f"#!/bin/sh\nexec {sys.executable} {__file__} --merge {name} \"$@\"\n")
        again.chmod(0o755)
        libfuzzer_args = ["-merge=1", f"-max_len={target.max_len}", f"-timeout={TIMEOUT}",
                          str(HERE / "corpus" / name), str(CACHE / "corpus" / name)]
    atheris.Setup([str(again), *libfuzzer_args], target.run)
    atheris.Fuzz()
    return 0


_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)


@dataclass
class Result:
    target: str
    seconds: int
    inputs: int
    exec_per_s: int
    corpus_added: int
    crashes: list[str]
    exit: int
    log: str


def fuzz(name: str, seconds: int) -> Result:
    log = CACHE / f"{name}.log"
    before = set((HERE / "corpus" / name).iterdir())
    started = time.monotonic()
    with log.open("w") as out:
        rc = subprocess.call([sys.executable, __file__, "--child", name, "--seconds", str(seconds)],
                             stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    with (CACHE / f"{name}.merge.log").open("w") as out:
        subprocess.call([sys.executable, __file__, "--merge", name], stdout=out, stderr=subprocess.STDOUT,
                        cwd=ROOT)
    added = len(set((HERE / "corpus" / name).iterdir()) - before)
    crashes = sorted(str(p.relative_to(ROOT)) for p in re.findall(r"Test unit written to (\S+)", text)
                     for p in [Path(p)] if p.exists())
    runs = stats.get("number_of_executed_units", 0)
    return Result(name, round(elapsed), runs, round(runs / elapsed) if elapsed else 0, added, crashes, rc,
                  str(log.relative_to(ROOT)))


def repro(name: str, path: str) -> int:
    import fuzz_targets
    from fuzz_targets.driver import run_one

    try:
        run_one(fuzz_targets.TARGETS[name], Path(path).read_bytes())
    except BaseException:
        traceback.print_exc()
        return 1
    print(f"{name}: {path}: the contract holds")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--jobs", type=int, default=1, help="targets run side by side (default 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--merge", help=argparse.SUPPRESS)
    parser.add_argument("--repro", metavar="FILE", help="run TARGET on FILE once and show what breaks")
    parser.add_argument("--list", action="store_true", help="list the targets and their contracts")
    opts, libfuzzer_args = parser.parse_known_args()
    if opts.child:
        return run_target(opts.child, opts.seconds)
    if opts.merge:
        return merge(opts.merge, libfuzzer_args)
    if libfuzzer_args:
        parser.error(f"unknown arguments: {' '.join(libfuzzer_args)}")
    import fuzz_targets

    if opts.list:
        for name, target in sorted(fuzz_targets.TARGETS.items()):
            print(f"{name}\n    {target.contract}\n")
        return 0
    names = opts.targets or sorted(fuzz_targets.TARGETS)
    unknown = [n for n in names if n not in fuzz_targets.TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; "
                     f"known: {', '.join(sorted(fuzz_targets.TARGETS))}")
    if opts.repro:
        if len(names) != 1:
            parser.error("--repro FILE needs exactly one TARGET")
        return repro(names[0], opts.repro)
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {len(names)} target(s), {opts.seconds} s each, {opts.jobs} at a time; logs in "
          f"{CACHE.relative_to(ROOT)}/", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        results = list(pool.map(lambda n: fuzz(n, opts.seconds), names))
    (CACHE / "report.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(f"{'target':18} {'seconds':>7} {'inputs':>10} {'exec/s':>7} {'new corpus':>10}  crashes")
    for r in results:
        print(f"{r.target:18} {r.seconds:>7} {r.inputs:>10} {r.exec_per_s:>7} {r.corpus_added:>10}  "
              f"{', '.join(r.crashes) or 'none'}")
    failed = [r.target for r in results if r.crashes or r.exit != 0]
    if failed:
        print(f"make fuzz: crashes or errors in {', '.join(failed)}: see the logs; reproduce with "
              f"tests/fuzz/fuzz.py --repro FILE TARGET", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
