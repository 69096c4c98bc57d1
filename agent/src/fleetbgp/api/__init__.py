"""API programs (ExaBGP-compatible): supervised child processes that announce and withdraw routes
with text commands on their stdout and read BGP events (ExaBGP 5 JSON or text) on their stdin.

    ApiManager(speaker, config)   start() / reload(config) / stop() / status()

See docs/agent/api.md for the operator's view.
"""

from .commands import Command, CommandError, parse_command
from .encoders import JsonEncoder, TextEncoder
from .manager import ApiManager
from .process import ProcessRunner

__all__ = ["ApiManager", "Command", "CommandError", "JsonEncoder", "ProcessRunner", "TextEncoder",
           "parse_command"]
