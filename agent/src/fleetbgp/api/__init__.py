"""API programs (ExaBGP-compatible): supervised child processes that announce and withdraw routes
with text commands on their stdout and read BGP events (ExaBGP 5 JSON or text) on their stdin.

    ApiManager(speaker, config)   start() / reload(config) / stop() / status()

A line becomes a Command (commands.py: one frozen dataclass per kind, no speaker involved); the
ProcessRunner (process.py) reads the lines and hands each Command to the dispatch callable it was
given, which is `ApiManager.dispatch` (manager.py, one `match` over the kinds). The runner does not
know the manager.

See docs/agent/api.md for the operator's view.
"""

from .commands import Command, CommandError, parse_command
from .encoders import JsonEncoder, TextEncoder
from .manager import ApiManager
from .process import Dispatch, OwnedRoutes, ProcessRunner

__all__ = ["ApiManager", "Command", "CommandError", "Dispatch", "JsonEncoder", "OwnedRoutes", "ProcessRunner",
           "TextEncoder", "parse_command"]
