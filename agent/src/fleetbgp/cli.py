"""The `fleetbgp` command line.

    fleetbgp validate FILE      check a config: exit 0 and a summary, or exit 1 and every error
    fleetbgp --test FILE        the same, spelled as ExaBGP's `exabgp --test FILE`
    fleetbgp run FILE           run the agent in the foreground, logging to stderr
    fleetbgp --version

Talking to a running agent over its control socket (cli_control.py):

    fleetbgp show status|neighbors|routes|health|processes [--json]
    fleetbgp announce ROUTE...  /  fleetbgp withdraw ROUTE...
    fleetbgp maintenance [on|off]
    fleetbgp reload
    fleetbgp check [THRESHOLDS]     Nagios/NRPE plugin (cli_check.py)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fleetbgp import __version__, cli_control
from fleetbgp.settings import add_run_arguments

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

LOG_LEVELS = ("debug", "info", "warning", "error")


def _plural(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: # comments, optional quotes.
    Raises ValueError naming the line; never shows a value."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
                raise ValueError(f"{path}:{number}: expected KEY=VALUE")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key] = value
    return out


def validate(path: str, env_file: str | None = None) -> int:
    from fleetbgp.config import ConfigError, load

    if env_file:
        # Secrets referenced as env['NAME'] come from the same file the unit loads, so a config is
        # checked exactly as the agent will read it, without the values on a command line.
        try:
            os.environ.update(read_env_file(env_file))
        except (OSError, ValueError) as exc:
            print(f"fleetbgp validate: --env-file: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        config = load(path)
    except ConfigError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        print(f"{path}: {_plural(len(exc.diagnostics), 'error')}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{path}: OK: {_plural(len(config.neighbors), 'neighbor')}, "
          f"{_plural(config.route_count(), 'route')}, "
          f"{_plural(len(config.processes), 'process', 'processes')}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from fleetbgp.settings import AgentSettings, SettingsError

    try:
        settings = AgentSettings.from_env_and_args(os.environ, args)
    except SettingsError as exc:
        print(f"fleetbgp run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from fleetbgp import daemon  # the daemon pulls in asyncio, sessions, metrics: only when running

    return int(daemon.run(args.file, settings))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetbgp",
        description="fleetbgp: a health-checked, ExaBGP-compatible BGP speaker.",
        epilog="ExaBGP's spelling works too: fleetbgp --test FILE (same as fleetbgp validate FILE).")
    parser.add_argument("--version", action="version", version=f"fleetbgp {__version__}")
    parser.add_argument("--test", metavar="FILE", help="validate FILE (ExaBGP's --test); same as 'validate'")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_validate = sub.add_parser("validate", help="check a config file; exit 1 and list every error if bad")
    p_validate.add_argument("file", metavar="FILE")
    p_validate.add_argument("--env-file", metavar="ENVFILE",
                            help="read KEY=VALUE lines (systemd EnvironmentFile syntax) first, for "
                                 "md5-password env['KEY'] references")
    p_run = sub.add_parser("run", help="run the agent in the foreground (logs to stderr)")
    p_run.add_argument("file", metavar="FILE")
    add_run_arguments(p_run)  # settings flags: logging, control socket, metrics, ... (settings.py)
    cli_control.add_parsers(sub)  # show, announce, withdraw, maintenance, reload
    # ExaBGP's healthcheck options go through untouched: fleetbgp.health.exabgp_program parses them.
    p_health = sub.add_parser("healthcheck", add_help=False, prefix_chars="\x00",
                              help="ExaBGP-compatible health check program for a process block "
                                   "(fleetbgp healthcheck --help lists its options)")
    p_health.add_argument("health_args", nargs="*")
    # Nagios plugin: parses its own options (usage errors exit 3 UNKNOWN, not argparse's 2).
    p_check = sub.add_parser("check", add_help=False, prefix_chars="\x00",
                             help="Nagios/Icinga/NRPE check of the running agent: exit 0/1/2/3 with "
                                  "perfdata (fleetbgp check --help lists its thresholds)")
    p_check.add_argument("check_args", nargs="*")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    # ExaBGP also accepts the file before the flag: `exabgp FILE --test`.
    if len(args_in) == 2 and args_in[1] == "--test" and not args_in[0].startswith("-"):
        args_in = ["--test", args_in[0]]
    parser = _parser()
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
    if args.test is not None:
        if args.command is not None:
            print("fleetbgp: --test FILE cannot be combined with a command", file=sys.stderr)
            return EXIT_USAGE
        return validate(args.test)
    if args.command == "validate":
        return validate(args.file, args.env_file)
    if args.command == "run":
        return run(args)
    if args.command in cli_control.COMMANDS:
        return cli_control.main(args)
    if args.command == "check":
        from fleetbgp import cli_check

        return cli_check.main(args.check_args)
    if args.command == "healthcheck":
        from fleetbgp.health import exabgp_program  # lazy: the program needs none of the agent

        return exabgp_program.main(args.health_args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE
