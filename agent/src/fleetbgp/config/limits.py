"""Limits of a health check that the config file and `fleetbgp healthcheck` check when they read
their options, and the health engine relies on: here so that config imports no runtime module."""

from __future__ import annotations

# Limits both front ends check when they read their options, so that nothing is accepted that the
# agent would refuse at every announcement (or that would not fit in memory).
MAX_ROUTES = 4096        # routes one health check announces: `--deaggregate-networks` of a /8 is 2^24
MAX_METRIC = 0xFFFFFFFF  # MED and LOCAL_PREF are 32 bits


def metric_overflow(up: int, down: int, disabled: int, increase: int, routes: int,
                    withdraw_on_down: bool) -> tuple[str, int, int] | None:
    """The first metric whose last route (each further route gets `increase` more) needs a MED
    over 32 bits: (its option name, its value, that MED). DOWN and DISABLED announce nothing with
    `withdraw_on_down`, so their metrics do not count then."""
    metrics = [("up-metric", up)]
    if not withdraw_on_down:
        metrics += [("down-metric", down), ("disabled-metric", disabled)]
    for name, metric in metrics:
        last = metric + increase * max(routes - 1, 0)
        if last > MAX_METRIC:
            return name, metric, last
    return None
