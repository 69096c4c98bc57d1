# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fleet.bgp modules share on top of the control client: the common options, one
connection per module run, and agent errors turned into messages an operator can act on.

fleetbgp_control is the agent's own client (a symlink to agent/src/fleetbgp/control_client.py,
kept free of Ansible); everything Ansible-specific lives here."""

from __future__ import annotations

from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_control import (
    DEFAULT_SOCKET,
    ControlClient,
    ControlError,
    ControlUnavailable,
)

GROUP = "fleetbgp"
SERVICE = "fleetbgp"

# Errors after which the connection is gone: never worth carrying on with.
TRANSPORT_ERRORS = ("unavailable", "timeout", "connection", "protocol")


def control_argument_spec(timeout=30):
    """The options every module has: where the control socket is, how long to wait for replies."""
    return {
        "socket": {"type": "path", "default": DEFAULT_SOCKET},
        "timeout": {"type": "float", "default": float(timeout)},
    }


def unavailable_message(exc):
    """An operator's message for a socket that cannot be reached, from the client's reason."""
    reason = (exc.reason or "").lower()
    if reason.startswith("permission denied"):
        return (f"permission denied on the fleetbgp control socket {exc.path}: run the task with "
                f"become, or add the user to group {GROUP}")
    if reason.startswith("no such socket"):
        return (f"cannot reach the fleetbgp agent: there is no control socket at {exc.path} "
                f"(the agent is not running? systemctl status {SERVICE})")
    if reason.startswith("connection refused"):
        return (f"cannot reach the fleetbgp agent: {exc.path} refuses connections, the agent is not "
                f"running and left a stale socket (systemctl status {SERVICE})")
    return f"cannot reach the fleetbgp agent at {exc.path}: {exc.reason} (systemctl status {SERVICE})"


def is_permission_error(exc):
    return isinstance(exc, ControlUnavailable) and (exc.reason or "").lower().startswith("permission")


def error_message(exc, cmd):
    """An operator's message for any ControlError raised while running the command `cmd`."""
    if isinstance(exc, ControlUnavailable):
        return unavailable_message(exc)
    if exc.code == "timeout":
        return f"the fleetbgp agent did not answer {cmd!r} in time: {exc.message} (raise timeout?)"
    if exc.code in ("connection", "protocol"):
        return f"lost the connection to the fleetbgp agent during {cmd!r}: {exc.message}"
    return f"the fleetbgp agent refused {cmd!r}: {exc.message} ({exc.code})"


class Agent:
    """The control connection of one module run. call() ends the module with fail_json on any
    error, so callers only ever see results."""

    def __init__(self, module, client=None):
        self.module = module
        self.client = client or ControlClient(module.params["socket"], timeout=module.params["timeout"])

    def call(self, cmd, **args):
        try:
            return self.client.call_args(cmd, args)
        except ControlError as exc:
            return self.fail(exc, cmd)

    def try_call(self, cmd, **args):
        """As call(), but a refusal by the agent comes back as the ControlError (for the caller to
        explain); not reaching the agent, or losing it, still ends the module."""
        try:
            return self.client.call_args(cmd, args)
        except ControlError as exc:
            if exc.code in TRANSPORT_ERRORS:
                return self.fail(exc, cmd)
            return exc

    def fail(self, exc, cmd, msg=None, **extra):
        """fail_json for a ControlError, with its code (and details, if any) in the result."""
        self.close()
        extra.setdefault("error_code", exc.code)
        if exc.details is not None:
            extra.setdefault("error_details", exc.details)
        self.module.fail_json(msg=msg or error_message(exc, cmd), **extra)

    def close(self):
        self.client.close()
