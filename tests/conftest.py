"""Repository-wide pytest setup: markers and options only (fixtures live next to their tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_INTEROP_DIR = Path(__file__).parent / "interop"

try:  # hypothesis profiles: no wall-clock deadlines (2-core CI), reproducible examples on CI.
    from hypothesis import HealthCheck, settings

    settings.register_profile("dev", deadline=None)
    settings.register_profile(
        "ci",
        deadline=None,
        derandomize=True,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
except ImportError:  # pragma: no cover - hypothesis is in requirements-dev.txt
    pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/interop as `interop`; skip it (visibly) when not root."""
    is_root = os.geteuid() == 0
    skip_not_root = pytest.mark.skip(reason="interop tests need root (network namespaces)")
    for item in items:
        if _INTEROP_DIR in item.path.parents:
            item.add_marker(pytest.mark.interop)
        if not is_root and item.get_closest_marker("interop") is not None:
            item.add_marker(skip_not_root)
