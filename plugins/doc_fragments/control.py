# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the modules that talk to the fleetbgp agent's control socket."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  socket:
    description:
      - Path of the agent's control socket on the target.
      - The agent creates it as C(root:fleetbgp), mode C(0660); the task needs root (C(become=true))
        or a remote user in group C(fleetbgp).
    type: path
    default: /run/fleetbgp/control.sock
attributes:
  action_group:
    description:
      - Part of the action group C(fleet.bgp.agent) - C(module_defaults) with C(group/fleet.bgp.agent) sets
        O(socket) and O(timeout) once for every module that talks to the agent.
    support: full
    membership:
      - fleet.bgp.agent
requirements:
  - The fleetbgp agent running on the target (the C(fleet.bgp.agent) role installs it).
  - Python 3.8 or later on the target; nothing beyond the standard library.
notes:
  - The module talks to the agent over its control socket (newline-delimited JSON), with the client the
    agent's own command line uses. Nothing is installed on the target.
  - When the socket is missing the module fails with a hint to check C(systemctl status fleetbgp); when
    it is not accessible, with a hint to use become or the C(fleetbgp) group.
"""
