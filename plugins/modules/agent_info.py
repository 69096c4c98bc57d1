#!/usr/bin/python
# Copyright: fleet.bgp maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_info
short_description: State of the fleetbgp agent - status, BGP sessions, health checks, routes
version_added: 0.1.0
description:
  - Asks the fleetbgp agent on the target, over its control socket, for its status (version, the
    configuration file and its SHA-256, the last reload, maintenance), its BGP neighbors and their
    sessions, its health checks and, on request, the routes it announces (its adj-rib-out).
  - With O(wait_for=established) it waits until the session of every selected neighbor is
    Established, to gate a rollout; after O(timeout) seconds it fails, naming each neighbor that is
    not up with its state and last error.
  - It changes nothing, and runs as usual in check mode.
options:
  wait_for:
    description:
      - V(established) waits until the BGP session of every selected neighbor (O(neighbors); default
        every configured neighbor) is Established, then returns.
      - While waiting, a control socket that is not there yet (the agent is starting) is tried again
        until O(timeout); a socket the task may not use fails at once.
      - An agent without any neighbor fails the wait (there is nothing to wait for, which is never what
        a rollout gate means).
      - Not set, the module reports the state as it is.
    type: str
    choices: [established]
  timeout:
    description:
      - Seconds. With O(wait_for), how long to wait for the sessions; in any case, the longest wait for
        one reply from the agent.
    type: float
    default: 60
  neighbors:
    description:
      - Only these neighbors (their addresses) in RV(neighbors), RV(routes), RV(established) and
        RV(configured), and for O(wait_for). An address that is not a neighbor of the agent is an error.
      - Default, every configured neighbor.
    type: list
    elements: str
  include_routes:
    description:
      - Also return the routes the agent announces to the selected neighbors (RV(routes)).
    type: bool
    default: false
  routes_limit:
    description:
      - With O(include_routes), return at most this many routes; RV(routes_total) still counts them all.
      - V(0) returns every route (on a large table, a large result).
    type: int
    default: 1000
  deployed_path:
    description:
      - The record of the deployed revision that the fleet.bgp.rollout playbook writes on the host, returned
        as RV(deployed). A file that is not there gives V(null).
    type: path
    default: /var/lib/fleetbgp/deployed.json
    version_added: 0.2.0
extends_documentation_fragment:
  - fleet.bgp.control
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: fleet.bgp.route
  - module: fleet.bgp.maintenance
author:
  - fleet.bgp maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the agent's state
  fleet.bgp.agent_info:
  become: true
  register: bgp

- name: Show the sessions
  ansible.builtin.debug:
    msg: "{{ bgp.established }}/{{ bgp.configured }} sessions up, agent {{ bgp.status.version }}"

- name: Gate the rollout - every session Established within two minutes
  fleet.bgp.agent_info:
    wait_for: established
    timeout: 120
  become: true

- name: Wait for the session to one router only, and fetch what is announced to it
  fleet.bgp.agent_info:
    neighbors: [192.0.2.1]
    wait_for: established
    include_routes: true
  become: true
  register: edge

- name: Check that the anycast address is announced
  ansible.builtin.assert:
    that: "'100.10.0.100/32' in edge.routes | map(attribute='prefix')"

- name: Read the configuration file on disk
  ansible.builtin.stat:
    path: "{{ bgp.status.config_path }}"
    checksum_algorithm: sha256
  become: true
  register: conf

- name: Does the agent run the file on disk? (a refused reload keeps the previous one running)
  ansible.builtin.assert:
    that: conf.stat.checksum == bgp.status.config_sha256
"""

RETURN = r"""
status:
  description:
    - The agent's status, as the control command C(status) answers it (C(fleetbgp show status --json)).
    - Times are Unix timestamps (seconds).
  returned: always
  type: dict
  contains:
    version:
      description: The agent's version.
      type: str
      sample: 0.1.0
    pid:
      description: The agent's process id.
      type: int
      sample: 2290
    started_at:
      description: When the agent started.
      type: float
      sample: 1795406560.2
    uptime:
      description: Seconds since the agent started.
      type: float
      sample: 275062.5
    config_path:
      description: The configuration file the agent runs.
      type: str
      sample: /etc/fleetbgp/fleetbgp.conf
    config_sha256:
      description: SHA-256 of the running configuration file, as it was loaded.
      type: str
      sample: 450ff17aad9ff21b97d7ea23cd3c281a3e66b32e01a94cd2e28045b0999c4d67
    config_loaded_at:
      description: When the running configuration was loaded.
      type: float
      sample: 1795658282.0
    last_reload:
      description: The last reload, if any - C(result) (V(success), V(failure) or null), C(time), C(errors).
      type: dict
      sample: {"result": "success", "time": 1795658282.0, "errors": []}
    reloads:
      description: Reloads that succeeded and failed since the start.
      type: dict
      sample: {"success": 4, "failure": 1}
    maintenance:
      description: Whether the agent is drained (see M(fleet.bgp.maintenance)).
      type: bool
      sample: false
    maintenance_mode:
      description: What a drain does - V(withdraw) or V(metric).
      type: str
      sample: withdraw
    neighbors:
      description: Neighbors configured (all of them, whatever O(neighbors) selects).
      type: int
      sample: 2
    established:
      description: Sessions Established (all neighbors).
      type: int
      sample: 2
    control_socket:
      description: Path of the control socket.
      type: str
      sample: /run/fleetbgp/control.sock
  sample:
    version: 0.1.0
    pid: 2290
    config_path: /etc/fleetbgp/fleetbgp.conf
    config_sha256: 450ff17aad9ff21b97d7ea23cd3c281a3e66b32e01a94cd2e28045b0999c4d67
    maintenance: false
    neighbors: 2
    established: 2
neighbors:
  description:
    - The selected neighbors, as the control command C(neighbors) answers (C(fleetbgp show neighbors --json)).
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The neighbor's address.
      type: str
      sample: 192.0.2.1
    peer_as:
      description: The neighbor's AS number.
      type: int
      sample: 65000
    local_as:
      description: Our AS number towards it.
      type: int
      sample: 65001
    state:
      description:
        - The BGP session state - V(Idle), V(Connect), V(Active), V(OpenSent), V(OpenConfirm),
          V(Established).
      type: str
      sample: Established
    established_since:
      description: When the session came up (Unix time); null while it is not Established.
      type: float
      sample: 1795406561.0
    last_error:
      description: Why the session is not up (the last error), or null.
      type: str
      sample: "connect to 192.0.2.9 port 179 failed: Connection refused"
    prefixes:
      description: Routes sent to the neighbor and received from it, per family (C(sent), C(received)).
      type: dict
      sample: {"sent": {"ipv4 unicast": 3}, "received": {"ipv4 unicast": 0}}
    families:
      description: Address families, C(configured) and C(negotiated).
      type: dict
      sample: {"configured": ["ipv4 unicast"], "negotiated": ["ipv4 unicast"]}
    flaps:
      description: Times the Established session went down.
      type: int
      sample: 0
    send_queue_empty:
      description:
        - True when nothing waits to be sent to the neighbor or to be acknowledged by its TCP (also
          without a session). After a drain it says the withdraws have reached the router; rolling
          restarts wait for it. Absent with older agents.
      type: bool
      sample: true
      version_added: 0.2.0
    bfd:
      description:
        - The neighbor's BFD session (docs/agent/bfd.md), or null without C(bfd) in its config (and
          with agents older than BFD support, where the key is absent).
        - C(state) and C(remote_state) are V(AdminDown), V(Down), V(Init) or V(Up); C(local_diag) and
          C(remote_diag) are RFC 5880 diagnostics in words (V(no diagnostic), V(control detection time
          expired), ...); intervals are milliseconds; C(holding_bgp) is true while BFD holds the BGP
          session down (BFD went Down after being Up and is not Up again).
      type: dict
      version_added: 0.2.0
      sample:
        state: Up
        remote_state: Up
        local_diag: no diagnostic
        remote_diag: no diagnostic
        tx_interval_ms: 300
        detect_time_ms: 900
        remote_min_tx_ms: 300
        remote_min_rx_ms: 300
        remote_multiplier: 3
        configured: {"min_tx_ms": 300, "min_rx_ms": 300, "multiplier": 3, "passive": false}
        auth: null
        up_since: 1795406561.2
        transitions: 3
        packets: {"sent": 1200, "received": 1190, "dropped": 0}
        last_down_reason: null
        holding_bgp: false
health:
  description:
    - The agent's health checks, as the control command C(health) answers (C(fleetbgp show health --json));
      empty without health checks.
  returned: always
  type: list
  elements: dict
  sample:
    - name: web
      state: UP
routes:
  description:
    - The routes announced to the selected neighbors (the adj-rib-out), one entry per neighbor and
      prefix, as the control command C(routes) answers; at most O(routes_limit).
  returned: when O(include_routes=true)
  type: list
  elements: dict
  contains:
    neighbor:
      description: The neighbor the route is announced to.
      type: str
      sample: 192.0.2.1
    family:
      description: Address family.
      type: str
      sample: ipv4 unicast
    prefix:
      description: The prefix.
      type: str
      sample: 100.10.0.100/32
    next_hop:
      description: The next hop (V(self) - the session's own address).
      type: str
      sample: self
    med:
      description: MED, if set.
      type: int
      sample: 100
    owner:
      description: Who announced it - V(config), V(process:NAME), V(health:NAME) or V(control:NAME).
      type: str
      sample: config
    route:
      description: The route in ExaBGP's syntax.
      type: str
      sample: 100.10.0.100/32 next-hop self med 100
routes_total:
  description: How many routes match (all of them, also beyond O(routes_limit)).
  returned: when O(include_routes=true)
  type: int
  sample: 3
routes_truncated:
  description: Whether RV(routes) was cut at O(routes_limit).
  returned: when O(include_routes=true)
  type: bool
  sample: false
established:
  description: How many of the selected neighbors have their session Established.
  returned: always
  type: int
  sample: 2
configured:
  description: How many neighbors are selected (all configured neighbors unless O(neighbors) is given).
  returned: always
  type: int
  sample: 2
not_established:
  description: Addresses of the selected neighbors whose session is not Established.
  returned: always
  type: list
  elements: str
  sample: []
deployed:
  description:
    - The revision of the desired-state repository deployed on the host by fleet.bgp.rollout (the content
      of O(deployed_path)), or null when no rollout recorded one. A file that cannot be read or parsed
      gives a dict with only C(error).
    - Compare C(config_sha256) with RV(status.config_sha256) to see a config changed since the rollout.
  returned: always
  type: dict
  version_added: 0.2.0
  contains:
    sha:
      description: The git commit rolled out.
      type: str
      sample: 9f2971642e69aeaf690768f2ed2b604b91a63a40
    ref:
      description: The ref the operator asked for (branch, tag or commit).
      type: str
      sample: v1.4.0
    repo:
      description: Where the repository was fetched from.
      type: str
      sample: git@git.example.com:net/fleet-state.git
    config_sha256:
      description: SHA-256 of the config the rollout rendered and validated for this host.
      type: str
      sample: 6b59d4e353a1874f0b16b468d53f2be2716446a1f98c9ffc4ba60c48958cc86f
    deployed_at:
      description: When it was deployed (UTC, ISO 8601).
      type: str
      sample: "2026-11-26T23:56:58Z"
    mode:
      description: V(push) (fleet.bgp.rollout) or V(pull) (fleet.bgp.rollout_pull).
      type: str
      sample: push
    previous_sha:
      description: The commit recorded before this one, or null.
      type: str
      sample: null
  sample:
    sha: 9f2971642e69aeaf690768f2ed2b604b91a63a40
    ref: main
    config_sha256: 6b59d4e353a1874f0b16b468d53f2be2716446a1f98c9ffc4ba60c48958cc86f
    deployed_at: "2026-11-26T23:56:58Z"
    mode: push
waited:
  description: Seconds spent waiting for O(wait_for).
  returned: when O(wait_for) is set
  type: float
  sample: 3.2
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_common import (
    Agent,
    control_argument_spec,
    error_message,
    is_permission_error,
)
from ansible_collections.fleet.bgp.plugins.module_utils.fleetbgp_control import (
    ControlError,
    ControlUnavailable,
)

POLL_INTERVAL = 1.0


def describe(neighbor):
    """'192.0.2.9 (Active: connect to 192.0.2.9 port 179 failed: refused)'"""
    why = neighbor.get("last_error")
    if not why:
        note = neighbor.get("last_notification")
        why = note.get("text") if isinstance(note, dict) else None
    state = neighbor.get("state") or "unknown"
    address = neighbor.get("address")
    return f"{address} ({state}: {why})" if why else f"{address} ({state})"


def read_deployed(path):
    """The rollout's record of the deployed revision: a dict, None when there is none, or
    {"error": ...} when the file cannot be read or is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {exc}"}
    if not isinstance(data, dict):
        return {"error": f"{path}: not a JSON object"}
    return data


def down(neighbors):
    return [n for n in neighbors if n.get("state") != "Established"]


class Info:
    def __init__(self, module):
        self.module = module
        self.agent = Agent(module)
        names = [n.strip() for n in module.params["neighbors"] or [] if n and n.strip()]
        self.selected = names or None
        self.last_unavailable = None

    def neighbors(self, tolerate_unavailable=False, timeout=None):
        """The selected neighbors; with tolerate_unavailable, None when the agent cannot be reached
        (for a reason that may go away: not a permission problem)."""
        args = {"neighbor": self.selected} if self.selected else {}
        try:
            return self.agent.client.call_args("neighbors", args, timeout=timeout).get("neighbors", [])
        except ControlUnavailable as exc:
            if not tolerate_unavailable or is_permission_error(exc):
                self.agent.fail(exc, "neighbors")
            self.last_unavailable = exc
            return None
        except ControlError as exc:
            if exc.code == "unknown_neighbor":
                known = [n.get("address") for n in self.agent.call("neighbors").get("neighbors", [])]
                self.agent.fail(exc, "neighbors", msg=(
                    f"neighbors: {exc.message}; the agent's neighbors are: {', '.join(known) or 'none'}"))
            return self.agent.fail(exc, "neighbors")

    def wait_established(self):
        """Poll until every selected session is Established: (neighbors, seconds waited).
        An agent that cannot be reached yet (starting, restarting) is tried again until the end."""
        timeout = self.module.params["timeout"]
        start = time.monotonic()
        deadline = start + timeout
        neighbors = None
        while True:
            remaining = max(deadline - time.monotonic(), 1.0)
            neighbors = self.neighbors(tolerate_unavailable=True, timeout=remaining)
            if neighbors is not None:
                if not neighbors:
                    self.agent.fail(ControlError("no_neighbors", "no neighbors"), "neighbors", msg=(
                        "wait_for=established: the agent has no neighbors configured, so there is "
                        "no session to wait for"), neighbors=[])
                if not down(neighbors):
                    return neighbors, time.monotonic() - start
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(POLL_INTERVAL, deadline - now))
        if neighbors is None:
            exc = self.last_unavailable
            self.agent.fail(exc, "neighbors", msg=(
                f"timed out after {timeout:g} s waiting for the agent: {error_message(exc, 'neighbors')}"))
        missing = down(neighbors)
        return self.agent.fail(ControlError("not_established", "sessions not established"), "neighbors", msg=(
            f"timed out after {timeout:g} s waiting for BGP sessions to be Established, "
            f"{len(missing)} of {len(neighbors)} not up: {'; '.join(describe(n) for n in missing)}"),
            neighbors=neighbors, not_established=[n.get("address") for n in missing],
            established=len(neighbors) - len(missing), configured=len(neighbors))

    def run(self):
        params = self.module.params
        result = {"changed": False}
        if params["wait_for"] == "established":
            neighbors, waited = self.wait_established()
            result["waited"] = round(waited, 3)
        else:
            neighbors = self.neighbors()
        result["status"] = self.agent.call("status")
        result["health"] = self.agent.call("health").get("checks", [])
        if params["include_routes"]:
            args = {"limit": params["routes_limit"]}
            if self.selected:
                args["neighbor"] = self.selected
            routes = self.agent.call("routes", **args)
            result["routes"] = routes.get("routes", [])
            result["routes_total"] = routes.get("count", len(result["routes"]))
            result["routes_truncated"] = bool(routes.get("truncated"))
        self.agent.close()
        result["deployed"] = read_deployed(params["deployed_path"])
        missing = down(neighbors)
        result.update(neighbors=neighbors, configured=len(neighbors),
                      established=len(neighbors) - len(missing),
                      not_established=[n.get("address") for n in missing])
        return result


def main():
    argument_spec = control_argument_spec(timeout=60)
    argument_spec.update(
        wait_for={"type": "str", "choices": ["established"]},
        neighbors={"type": "list", "elements": "str"},
        include_routes={"type": "bool", "default": False},
        routes_limit={"type": "int", "default": 1000},
        deployed_path={"type": "path", "default": "/var/lib/fleetbgp/deployed.json"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be more than 0 seconds")
    if module.params["routes_limit"] < 0:
        module.fail_json(msg="routes_limit must be 0 (every route) or more")
    module.exit_json(**Info(module).run())


if __name__ == "__main__":
    main()
