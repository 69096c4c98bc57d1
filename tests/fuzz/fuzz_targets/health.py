"""`fleetbgp healthcheck` options (ExaBGP's healthcheck.py options), on the command line and in its
`--config` file."""

from __future__ import annotations

import atexit
import contextlib
import io
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterator

from fleetbgp.api.commands import CommandError, parse_command
from fleetbgp.health import exabgp_program
from fleetbgp.health.engine import Advert, State

from .base import require, target

_CONFIG_MARK = "--- config file"
_LOOPBACK = ipaddress.ip_network("192.0.2.10/32")  # stands for the loopback's address without --ip
_DIR = tempfile.mkdtemp(prefix="fleetbgp-fuzz-")
atexit.register(shutil.rmtree, _DIR, True)
_config_path = os.path.join(_DIR, "healthcheck.conf")
_read_config = exabgp_program.config_file_args


def _fuzzed_config_file(path: str) -> list[str]:
    # Whatever path the input names, read the input's own file: never a real one (/dev/stdin would hang).
    return _read_config(_config_path)


@contextlib.contextmanager
def _own_config_file() -> Iterator[None]:
    exabgp_program.config_file_args = _fuzzed_config_file
    try:
        yield
    finally:
        exabgp_program.config_file_args = _read_config

HEALTH_WORDS = tuple(w.encode() for w in (
    "--ip", "--interval", "--fast-interval", "--timeout", "--rise", "--fall", "--up-metric",
    "--down-metric", "--disabled-metric", "--increase", "--local-preference", "--community",
    "--large-community", "--extended-community", "--as-path", "--up-as-path", "--withdraw-on-down",
    "--deaggregate-networks", "--start-ip", "--next-hop", "--neighbor", "--config", "--cmd",
    "--execute", "--label", "--ack", "--no-ack", "--ack-timeout", "10.0.0.0/8", "192.0.2.1/32",
    "2001:db8::/120", "01.2.3.4", "nan", "inf", "-1", "4294967295", "4294967296", "\u00b2", "9" * 5000,
    "65000:1", "1:2:3", "target:1:2", _CONFIG_MARK, "ip = 10.0.0.1", "interval = 1", "\n",
))


@target("health_options", max_len=4096, dictionary=HEALTH_WORDS, contract="""
    Each line of the input is one argument of `fleetbgp healthcheck`; after a line
    `--- config file`, the rest is the file `--config` reads. The options are accepted or refused
    by argparse (SystemExit 2, a message naming the option). What is accepted works: the addresses
    deaggregate within the documented limit, and the announce and withdraw lines the check writes
    for UP, DOWN and DISABLED are commands the agent's API takes.""")
def health_options(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    args_text, _, config_text = text.partition("\n" + _CONFIG_MARK + "\n")
    with open(_config_path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(config_text)
    argv = args_text.split("\n") if args_text else []
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), \
                _own_config_file():
            options = exabgp_program.parse_args(argv)
    except SystemExit as exc:
        require(exc.code in (0, 2), f"argparse exited with {exc.code!r}")
        return
    if options.ips:
        exabgp_program.prepare_ips(options)
    elif exabgp_program.route_problem(options, [_LOOPBACK]) is not None:
        return  # without --ip the program reads the loopback's addresses, checks them, exits 2
    announcer = exabgp_program.Announcer(options, io.StringIO(), None)
    ips = announcer.ips or [str(_LOOPBACK)]
    for state, metric in ((State.UP, options.up_metric), (State.DOWN, options.down_metric),
                          (State.DISABLED, options.disabled_metric)):
        advert = Advert(state, withdraw=state is not State.UP and options.withdraw_on_down,
                        metric=metric, increase=options.increase)
        for ip, value in zip(ips, advert.metrics(len(ips)), strict=True):
            line = announcer.line(ip, state, value)
            try:
                parse_command(line)
            except CommandError as exc:
                raise AssertionError(f"accepted options make a line the agent refuses: {line[:300]!r}: "
                                     f"{exc.message}") from None
