"""The control socket: newline-delimited JSON requests and replies on a unix socket.

    request   {"v": 1, "id": 7, "cmd": "routes", "args": {"neighbor": "192.0.2.1", "limit": 10}}
    reply     {"v": 1, "id": 7, "ok": true, "result": {...}}
    error     {"v": 1, "id": 7, "ok": false, "error": {"code": "unknown_neighbor", "message": "..."}}

One request per line, replies in order. A bad request (not JSON, unknown command, bad arguments, a
route that does not parse) gets an error reply; the connection stays open and the agent carries on.
The commands are those registered in commands.py (`COMMANDS`; FlowSpec rules by name:
docs/agent/flowspec.md). The reference with examples is docs/agent/operations.md;
`control_client.py` is the client.

    server.py    the socket, its clients and their limits; a request line in, a reply out
    protocol.py  request checks (JSON, depth, version, id), reply lines, the line reader
    commands.py  every command, registered once with its argument schema
    ports.py     what the commands use of the Speaker (typing.Protocol)
    routes.py    routes and prefixes from a request's arguments
    query.py     the `routes` query, streamed
    views.py     peers and routes as JSON and as ExaBGP text

Everything here runs on the event loop thread, like every other caller of the Speaker.
"""

from .commands import COMMANDS
from .protocol import ControlError
from .server import ControlServer

__all__ = ["COMMANDS", "ControlError", "ControlServer"]
