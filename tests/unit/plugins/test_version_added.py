"""version_added cannot drift: every module, module option and return value, role entry point and
role option says the release it first shipped in.

RELEASED freezes what each release contained, read from the tree of the release commit (0.1.0 is
commit 9b37ae4, the one that wrote its changelog entry; nothing under plugins/, roles/, playbooks/
or meta/ changed between it and the first changelog fragment). A thing in a frozen release says that
release (options and return values may also say nothing: they then date from their module/entry
point). A thing in no frozen release is new: it must say a version newer than the newest frozen
one - the release being prepared (docs/dev/releasing.md). After a release, freeze its contents:
`.venv/bin/python tests/unit/plugins/test_version_added.py --freeze X.Y.Z` writes
tests/unit/plugins/released/X.Y.Z.yml (scripts/release.sh says so).

Only the collection's own files are read (plugins/, roles/), so the test runs on the built tarball too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

COLLECTION = Path(__file__).resolve().parents[3]

_MODULES_010 = {
    "agent_info": {
        "options": ["include_routes", "neighbors", "routes_limit", "socket", "timeout", "wait_for"],
        "return": [
            "configured", "established", "health", "neighbors", "neighbors.address",
            "neighbors.established_since", "neighbors.families", "neighbors.flaps", "neighbors.last_error",
            "neighbors.local_as", "neighbors.peer_as", "neighbors.prefixes", "neighbors.state",
            "not_established", "routes", "routes.family", "routes.med", "routes.neighbor", "routes.next_hop",
            "routes.owner", "routes.prefix", "routes.route", "routes_total", "routes_truncated", "status",
            "status.config_loaded_at", "status.config_path", "status.config_sha256", "status.control_socket",
            "status.established", "status.last_reload", "status.maintenance", "status.maintenance_mode",
            "status.neighbors", "status.pid", "status.reloads", "status.started_at", "status.uptime",
            "status.version", "waited",
        ],
    },
    "maintenance": {
        "options": ["socket", "state", "timeout", "wait"],
        "return": ["maintenance", "metric", "mode", "waited"],
    },
    "route": {
        "options": [
            "as_path", "communities", "extended_communities", "large_communities", "local_preference", "med",
            "neighbors", "next_hop", "origin", "owner", "prefix", "socket", "state", "timeout",
        ],
        "return": [
            "announced_to", "route", "route.as_path", "route.communities", "route.extended_communities",
            "route.large_communities", "route.local_preference", "route.med", "route.neighbors",
            "route.next_hop", "route.origin", "route.owner", "route.prefix", "route.state", "withdrawn_from",
        ],
    },
}

_ROUTE_KEYS_010 = ["aggregator", "as_path", "atomic_aggregate", "communities", "extended_communities",
                   "large_communities", "local_preference", "med", "next_hop", "origin", "prefix"]
_SESSION_KEYS_010 = ["adj_rib_in", "connect", "description", "extended_message", "families", "graceful_restart",
                     "hold_time", "listen", "local_address", "local_as", "md5_base64", "md5_password",
                     "outgoing_ttl", "passive", "peer_as", "route_refresh", "ttl_security"]


def _nested(parent: str, keys: list[str]) -> list[str]:
    return [f"{parent}.{k}" for k in keys]


_AGENT_MAIN_010 = [
    "fleet_bgp_local_as", "fleet_bgp_router_id",
    "fleet_bgp_neighbors", *_nested("fleet_bgp_neighbors", [*_SESSION_KEYS_010, "address", "router_id",
                                                            "template", "routes"]),
    *_nested("fleet_bgp_neighbors.routes", _ROUTE_KEYS_010),
    "fleet_bgp_templates", *_nested("fleet_bgp_templates", [*_SESSION_KEYS_010, "name", "routes"]),
    *_nested("fleet_bgp_templates.routes", _ROUTE_KEYS_010),
    "fleet_bgp_default_families",
    "fleet_bgp_routes", *_nested("fleet_bgp_routes", _ROUTE_KEYS_010),
    "fleet_bgp_listen",
    "fleet_bgp_healthchecks", *_nested("fleet_bgp_healthchecks", [
        "as_path", "check", "community", "disable_file", "disabled_as_path", "disabled_community",
        "disabled_execute", "disabled_metric", "down_as_path", "down_execute", "down_metric", "execute",
        "extended_community", "fall", "fast_interval", "increase", "interval", "ip", "large_community",
        "local_preference", "name", "neighbors", "next_hop", "rise", "timeout", "up_as_path", "up_execute",
        "up_metric", "withdraw_on_down"]),
    "fleet_bgp_processes", *_nested("fleet_bgp_processes", [
        "args", "dest", "encoder", "env", "name", "neighbor_changes", "neighbors", "receive", "respawn", "run",
        "send", "src", "withdraw_on_exit", "working_directory"]),
    "fleet_bgp_processes_purge", "fleet_bgp_metrics_listen", "fleet_bgp_metrics_scrapers",
    "fleet_bgp_agent_log_level", "fleet_bgp_agent_log_destination", "fleet_bgp_agent_log_format",
    "fleet_bgp_agent_maintenance_mode", "fleet_bgp_agent_environment", "fleet_bgp_agent_python",
    "fleet_bgp_agent_install_venv_package", "fleet_bgp_agent_force_install", "fleet_bgp_agent_source",
    "fleet_bgp_agent_controller_python", "fleet_bgp_agent_wheel_cache", "fleet_bgp_agent_pip_wheel_args",
    "fleet_bgp_agent_os_check", "fleet_bgp_service_enabled", "fleet_bgp_service_state",
    "fleet_bgp_service_watchdog_sec", "fleet_bgp_service_restart_sec", "fleet_bgp_service_limit_nofile",
    "fleet_bgp_service_limit_nproc", "fleet_bgp_service_tasks_max", "fleet_bgp_service_memory_high",
    "fleet_bgp_service_memory_max", "fleet_bgp_service_cpu_quota", "fleet_bgp_service_ip_filter",
    "fleet_bgp_service_ip_allow", "fleet_bgp_service_address_families_extra", "fleet_bgp_service_protect_proc",
    "fleet_bgp_service_proc_subset", "fleet_bgp_service_extra",
]

# release -> {"modules": {name: {"options": [...], "return": [...]}}, "roles": {"role:entry": [options]}}
RELEASED: dict[str, dict] = {
    "0.1.0": {"modules": _MODULES_010, "roles": {"agent:main": _AGENT_MAIN_010}},
}
FROZEN = Path(__file__).resolve().parent / "released"
for _frozen in sorted(FROZEN.glob("*.yml")):
    RELEASED[_frozen.stem] = yaml.safe_load(_frozen.read_text())


def _version(text: object) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(text))
    assert match, f"version_added {text!r} is not X.Y.Z"
    return tuple(int(x) for x in match.groups())


NEWEST = max(RELEASED, key=_version)


def _doc_string(path: Path, name: str) -> str | None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _fragment_options(name: str) -> dict:
    """fleet.bgp.X fragments from plugins/doc_fragments; others (ansible.builtin.*) add no options of ours."""
    if not name.startswith("fleet.bgp."):
        return {}
    path = COLLECTION / "plugins" / "doc_fragments" / f"{name.split('.')[2]}.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION"
                                                for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value)).get("options") or {}
    return {}


def _module(name: str) -> tuple[dict, dict, dict]:
    path = COLLECTION / "plugins" / "modules" / f"{name}.py"
    doc = yaml.safe_load(_doc_string(path, "DOCUMENTATION"))
    options: dict = {}
    for fragment in doc.get("extends_documentation_fragment") or []:
        options.update(_fragment_options(fragment))
    options.update(doc.get("options") or {})
    returns = yaml.safe_load(_doc_string(path, "RETURN") or "") or {}
    return doc, options, returns


def _tree(options: dict, child_key: str, prefix: str = "") -> list[tuple[str, dict]]:
    out = []
    for key, value in (options or {}).items():
        out.append((prefix + key, value or {}))
        out += _tree((value or {}).get(child_key) or {}, child_key, f"{prefix}{key}.")
    return out


def _names(tree: list[tuple[str, dict]]) -> list[str]:
    return [path for path, _spec in tree]


def _released_in(kind: str, key: str, sub: str | None = None) -> str | None:
    """The first frozen release that had it (a module/entry point, or one of its options/returns)."""
    for release in sorted(RELEASED, key=_version):
        items = RELEASED[release][kind]
        if key not in items:
            continue
        if sub is None:
            return release
        found = items[key] if isinstance(items[key], list) else items[key][sub[0]]
        if sub[1] in found:
            return release
    return None


def _check_items(owner: str, owner_since: str, items: list[tuple[str, dict]], kind: str, key: str,
                 sub_kind: str | None) -> list[str]:
    problems = []
    new_parents: set[str] = set()
    for path, spec in items:
        said = spec.get("version_added")
        since = _released_in(kind, key, (sub_kind, path) if sub_kind else ("", path))
        parent = path.rpartition(".")[0]
        inherited = parent in new_parents
        if since is None:
            new_parents.add(path)
            if owner_since is None or inherited:
                # a new module/entry point or a new parent: its children are as new as it is
                if said is not None and _version(said) <= _version(NEWEST):
                    problems.append(f"{owner}: {path} says version_added {said}, but it is newer than {NEWEST}")
                continue
            if said is None or _version(said) <= _version(NEWEST):
                problems.append(f"{owner}: {path} is not in {NEWEST} (or before): it needs version_added "
                                f"newer than {NEWEST} (says {said})")
        elif said is not None and str(said) != since:
            problems.append(f"{owner}: {path} shipped in {since} but says version_added {said}")
    return problems


def _modules() -> list[str]:
    return sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", _modules())
def test_module_version_added(name):
    doc, options, returns = _module(name)
    since = _released_in("modules", name)
    said = doc.get("version_added")
    problems = []
    if since is not None:
        if str(said) != since:
            problems.append(f"module {name} shipped in {since} but says version_added {said}")
    elif said is None or _version(said) <= _version(NEWEST):
        problems.append(f"module {name} is not in {NEWEST} (or before): version_added must be newer (says {said})")
    problems += _check_items(f"module {name}", since, _tree(options, "suboptions"), "modules", name, "options")
    problems += _check_items(f"module {name} (return)", since, _tree(returns, "contains"), "modules", name,
                             "return")
    assert not problems, "\n".join(problems)


def _entry_points() -> list[tuple[str, str]]:
    out = []
    for spec in sorted((COLLECTION / "roles").glob("*/meta/argument_specs.yml")):
        role = spec.parent.parent.name
        for entry in yaml.safe_load(spec.read_text())["argument_specs"]:
            out.append((role, entry))
    return out


@pytest.mark.parametrize(("role", "entry"), _entry_points())
def test_role_entry_point_version_added(role, entry):
    spec = yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml").read_text())
    data = spec["argument_specs"][entry]
    key = f"{role}:{entry}"
    since = _released_in("roles", key)
    said = data.get("version_added")
    problems = []
    if since is not None:
        if str(said) != since:
            problems.append(f"role {key} shipped in {since} but says version_added {said}")
    elif said is None or _version(said) <= _version(NEWEST):
        problems.append(f"role {key} is not in {NEWEST} (or before): version_added must be newer (says {said})")
    problems += _check_items(f"role {key}", since, _tree(data.get("options") or {}, "options"), "roles", key,
                             None)
    assert not problems, "\n".join(problems)


def test_the_frozen_release_is_still_there():
    """A frozen module, entry point or option that disappeared is a breaking change, not a silent one."""
    modules = set(_modules())
    problems = []
    for release, content in RELEASED.items():
        for name, frozen in content["modules"].items():
            if name not in modules:
                problems.append(f"{release} module {name} is gone")
                continue
            have = set(_names(_tree(_module(name)[1], "suboptions")))
            problems += [f"{release} module {name} option {o} is gone" for o in frozen["options"] if o not in have]
        entries = set(_entry_points())
        for key, frozen in content["roles"].items():
            role, entry = key.split(":", 1)
            if (role, entry) not in entries:
                problems.append(f"{release} role {key} is gone")
                continue
            spec = yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml").read_text())
            have = set(_names(_tree(spec["argument_specs"][entry].get("options") or {}, "options")))
            problems += [f"{release} role {key} option {o} is gone" for o in frozen if o not in have]
    assert not problems, "\n".join(problems) + "\n(a removal needs a breaking_changes fragment and an update here)"


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint (and ansible-lint) want them in this repository."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _contents() -> dict:
    """What the tree holds now, in the form of RELEASED."""
    modules = {}
    for name in _modules():
        options, returns = _module(name)[1:]
        modules[name] = {"options": sorted(_names(_tree(options, "suboptions"))),
                         "return": sorted(_names(_tree(returns, "contains")))}
    roles = {}
    for role, entry in _entry_points():
        spec = yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml").read_text())
        options = spec["argument_specs"][entry].get("options") or {}
        roles[f"{role}:{entry}"] = sorted(_names(_tree(options, "options")))
    return {"modules": modules, "roles": roles}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="freeze what a release contains, for this test")
    parser.add_argument("--freeze", metavar="VERSION", required=True)
    args = parser.parse_args()
    _version(args.freeze)
    FROZEN.mkdir(exist_ok=True)
    target = FROZEN / f"{args.freeze}.yml"
    target.write_text(f"---\n# What fleet.bgp {args.freeze} contains (tests/unit/plugins/test_version_added.py --freeze)\n"
                      + yaml.dump(_contents(), Dumper=_IndentedDumper, sort_keys=True, width=120))
    print(f"wrote {target.relative_to(COLLECTION)}")
