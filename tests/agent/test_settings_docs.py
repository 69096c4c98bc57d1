"""docs/agent/operations.md names every setting, flag, metric, control command and error code the
code has (and no metric the code does not have)."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from control_fakes import sample_speaker

from fleetbgp import control, settings
from fleetbgp.metrics import build_metrics, take_snapshot

DOC = (Path(__file__).resolve().parents[2] / "docs" / "agent" / "operations.md").read_text(encoding="utf-8")


def test_every_fleetbgp_variable_is_documented():
    missing = [name for name in settings._FLEETBGP_ENV if f"`{name}`" not in DOC]
    assert not missing, missing


def test_every_run_flag_is_documented():
    parser = argparse.ArgumentParser()
    settings.add_run_arguments(parser)
    flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    missing = [f for f in flags if f not in DOC]
    assert not missing, missing


def test_every_exabgp_variable_is_documented():
    missing = [k for k in settings._EXABGP_ENV if f"exabgp.{k}" not in DOC]
    assert not missing, missing


def exposed_kinds() -> dict[str, str]:
    """Every metric the collector exposes (counters with their `_total`), by its Prometheus type."""
    speaker = sample_speaker()
    speaker.health = type("H", (), {"status": lambda self: [{"name": "x", "state": "UP"}]})()
    speaker.api = type("A", (), {"status": lambda self: [{"name": "p", "restarts": 0}]})()
    speaker.config = type("C", (), {"route_count": lambda self: 0, "neighbors": [], "healthchecks": {}})()
    kinds = {}
    for family in build_metrics(take_snapshot(speaker), time.time()):
        suffix = "_total" if family.type == "counter" else "_info" if family.type == "info" else ""
        # The text exposition format Prometheus scrapes has no info type: an info metric is a gauge of 1.
        kinds[family.name + suffix] = "gauge" if family.type == "info" else family.type
    return kinds


def test_every_metric_is_documented_with_its_type():
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(fleetbgp_\w+)` \| (\w+) \|", DOC, re.M)}
    kinds = exposed_kinds()
    names = set(kinds)
    assert names == set(rows), f"in code only: {names - set(rows)}; in doc only: {set(rows) - names}"
    for name, kind in rows.items():
        assert kind == kinds[name], f"{name}: the doc says {kind}, the collector exposes a {kinds[name]}"


def test_every_command_and_error_code_is_documented():
    for cmd in control.COMMANDS:
        assert f"| `{cmd}` |" in DOC, cmd
    source = "".join(p.read_text(encoding="utf-8") for p in Path(control.__file__).parent.glob("*.py"))
    codes = set(re.findall(r'ControlError\(\s*"(\w+)"', source))
    assert {"bad_request", "unknown_command", "invalid_route", "unknown_neighbor", "reload_failed"} <= codes
    missing = [c for c in codes if f"| `{c}` |" not in DOC]
    assert not missing, missing
