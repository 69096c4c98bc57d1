"""What the operator docs name, and whether it exists (tests/agent/test_docs_truth.py).

A doc is README.md or docs/**/*.md. Names with a prefix of their own are found anywhere in a doc:
metrics (`fleetbgp_*`), variables (`fleet_bgp_*`), collection content (`fleet.bgp.NAME`), playbook
files (`playbooks/NAME.yml`). Commands are found only in code (backticks, fenced blocks): a
`fleetbgp ...` command line, and the `-e NAME=...` options of a playbook run. Relative links must
lead to a file, and their #anchor to one of its headings.

What exists comes from the code itself: the metrics a scrape of the agent shows (its registry
rendered from a sample speaker), the `fleetbgp` argparse parser, the files under playbooks/,
plugins/modules/ and roles/, and the variables of the roles, the playbooks and the lab inventory.

Each check returns problems as lines `FILE:LINE: what is wrong (did you mean X?)`, ready to act on.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Old playbook options (`-e NAME=`) the docs name on purpose although no playbook takes them any
# more. Keep it short: every entry says where the docs explain it. Old names a playbook still
# accepts (the `old:` names of its option list) are known without being listed here.
REMOVED_OPTIONS = {
    "action": "fleet.bgp.mitigate refuses it (an Ansible reserved name) and names "
              "fleet_bgp_mitigate_action instead: docs/operations/ddos-mitigation.md",
    "port": "fleet.bgp.mitigate refuses it (an Ansible reserved name) and names "
            "fleet_bgp_mitigate_dport instead: docs/operations/ddos-mitigation.md",
}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def where(doc: Path, line: int) -> str:
    return f"{doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc}:{line}"


def nearest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


@dataclass(frozen=True)
class DocLine:
    doc: Path
    number: int
    text: str
    code: tuple[str, ...]  # the line's code: its backtick spans, or the whole line inside a fence


def doc_lines(docs: Iterable[Path]) -> Iterator[DocLine]:
    for doc in docs:
        fenced = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            # `\|` is a pipe inside a table cell
            code = (line,) if fenced else tuple(m.group(1) for m in re.finditer(r"`([^`]+)`", line))
            yield DocLine(doc, number, line, tuple(c.replace("\\|", "|") for c in code))


# -- metrics -----------------------------------------------------------------------------------------

# A name followed by `*` is a prefix (`fleetbgp_bfd_*`); one followed by `.py` a file (module_utils).
_METRIC = re.compile(r"(?<![\w./-])(fleetbgp_[a-z0-9_]+)(\*|\.\w)?")
_PROCESS_METRIC = re.compile(r"(?<![\w./-])(process_[a-z0-9_]+)(\*)?")
# Series names prometheus_client shows for a family without samples, by type
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
             "summary": ("_count", "_sum"), "gaugehistogram": ("_bucket", "_gcount", "_gsum")}


class _Health:
    def status(self) -> list[dict[str, Any]]:
        return [{"name": "web", "state": "UP", "since": 1.0, "transitions": 4}]


class _Api:
    def status(self) -> list[dict[str, Any]]:
        return [{"name": "healthcheck", "restarts": 2}]


def _speakers() -> Iterator[Any]:
    """A quiet speaker (peers and routes) and a busy one (a health check, an API program, in
    maintenance, after a refused reload): families a state leaves out are in the other."""
    import time

    from control_fakes import sample_speaker

    yield sample_speaker()
    busy = sample_speaker()
    busy.health = _Health()
    busy.api = _Api()
    busy.maintenance = True
    busy.reload_counts = {"success": 2, "failure": 1}
    busy.last_reload = {"result": "failure", "time": time.time(), "errors": ["x"]}
    yield busy


@cache
def exposed_metrics() -> frozenset[str]:
    """What a scrape of the agent's /metrics shows: the agent's own registry (its collector and the
    process collector), rendered in the text format and parsed back, for the speakers above.
    Histogram and summary family names count too (PromQL and dashboards name them so)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from fleetbgp.metrics import Metrics
    from fleetbgp.settings import AgentSettings

    names: set[str] = set()
    for speaker in _speakers():
        registry = Metrics(speaker, AgentSettings(metrics_address="127.0.0.1", metrics_port=0)).registry
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            if family.samples:
                names.update(sample.name for sample in family.samples)
            else:
                names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
            if family.type in _SUFFIXES and family.type != "counter":
                names.add(family.name)
    return frozenset(names)


def module_utils() -> set[str]:
    """plugins/module_utils/fleetbgp_*.py: fleetbgp_ names that are files, not metrics."""
    return {p.stem for p in (ROOT / "plugins" / "module_utils").glob("*.py")}


def metric_problems(docs: Iterable[Path]) -> tuple[list[str], int]:
    """(problems, how many metric names the docs name)."""
    known = exposed_metrics()
    files = module_utils()
    problems: list[str] = []
    seen = 0
    for line in doc_lines(docs):
        found = [(m.group(1), m.group(2)) for m in _METRIC.finditer(line.text)]
        found += [(m.group(1), m.group(2)) for code in line.code for m in _PROCESS_METRIC.finditer(code)]
        for name, after in found:
            if name in files or (after or "").startswith("."):
                continue
            seen += 1
            if after == "*" or name.endswith("_"):
                if not any(k.startswith(name) for k in known):
                    problems.append(f"{where(line.doc, line.number)}: no metric starts with {name}")
            elif name not in known:
                problems.append(f"{where(line.doc, line.number)}: {name} is not a metric the agent "
                                f"exposes{nearest(name, known)}")
    return problems, seen


# -- fleetbgp commands ------------------------------------------------------------------------------

@dataclass
class Command:
    """A `fleetbgp` subcommand: its options (-> whether they take a value), its first positional's
    choices (`show WHAT`, `flow announce|withdraw`, `maintenance on|off`)."""

    options: dict[str, bool] = field(default_factory=dict)
    choices: tuple[str, ...] = ()


def _options(parser: argparse.ArgumentParser) -> dict[str, bool]:
    return {opt: action.nargs != 0 for opt, action in parser._option_string_actions.items()}


def _command(parser: argparse.ArgumentParser) -> Command:
    positionals = [a for a in parser._actions if not a.option_strings]
    first = positionals[0] if positionals else None
    choices = tuple(first.choices) if first is not None and first.choices else ()
    return Command(_options(parser), choices)


@cache
def cli() -> tuple[dict[str, bool], dict[str, Command]]:
    """(top-level options, subcommands) of the real `fleetbgp` parser. `check` and `healthcheck`
    parse their own options: their own parsers stand in for them."""
    from fleetbgp import cli as fleetbgp_cli
    from fleetbgp import cli_check
    from fleetbgp.health import exabgp_program

    parser = fleetbgp_cli._parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = {"check": cli_check.parser, "healthcheck": exabgp_program.build_parser}
    commands = {name: _command(own[name]() if name in own else sub)
                for name, sub in subparsers.choices.items()}
    return _options(parser), commands


# Words that run the next one as a command (sudo fleetbgp ..., a config's `run .../fleetbgp ...`,
# an Ansible task's `command: fleetbgp ...`) and wrapper options that take a value.
_WRAPPERS = {"sudo", "exec", "watch", "time", "xargs", "nohup", "run", "-", "command:", "cmd:",
             "ansible.builtin.command:", "ansible.builtin.shell:", "shell:"}
_WRAPPER_VALUE_OPTIONS = {"-u", "--user", "-g", "-n"}
_SEPARATORS = re.compile(r"\|\|?|&&?|;|\$\(|[()`]")
_WORD = re.compile(r"[a-z][a-z0-9-]*")


def _is_fleetbgp(token: str) -> bool:
    return token.rsplit("=", 1)[-1].rsplit("/", 1)[-1] == "fleetbgp"


def invocations(code: str) -> Iterator[list[str]]:
    """The arguments of each `fleetbgp` command in a piece of code (a quoted argument is one)."""
    code = re.sub(r"'[^']*'|\"[^\"]*\"", " QUOTED ", code)
    code = re.sub(r"(?<=\S)\s+#.*", "", code)  # a comment after something: `#` first is a prompt
    for index, segment in enumerate(_SEPARATORS.split(code)):
        tokens = segment.split()
        if index == 0 and tokens and tokens[0] in ("$", "#"):  # a shell prompt
            tokens = tokens[1:]
        i = 0
        while i < len(tokens) and not _is_fleetbgp(tokens[i]):
            if tokens[i] in _WRAPPER_VALUE_OPTIONS and i > 0:
                i += 2
            elif tokens[i] in _WRAPPERS or (i > 0 and tokens[i].startswith("-")):
                i += 1
            else:
                break
        if i >= len(tokens) or not _is_fleetbgp(tokens[i]):
            continue
        args: list[str] = []
        for token in tokens[i + 1:]:
            if ">" in token or "<" in token:  # a redirection
                break
            args.append(token.strip("[]"))
        yield args


def command_problems(args: list[str]) -> list[str]:
    """What is wrong with one `fleetbgp ARGS` line (placeholders such as FILE or ... pass)."""
    top, commands = cli()
    if not args:
        return []
    first = args[0]
    if first.startswith("-"):
        option = first.split("=", 1)[0]
        return [] if option in top else [f"fleetbgp has no option {option}{nearest(option, top)}"]
    if not _WORD.fullmatch(first):
        return []
    if first not in commands:
        return [f"fleetbgp has no command {first!r}{nearest(first, commands)}"]
    command = commands[first]
    problems = []
    positional_seen = False
    rest = iter(args[1:])
    for token in rest:
        if token.startswith("-") and len(token) > 1 and not token[1:2].isdigit():
            option, _, value = token.partition("=")
            if option not in command.options:
                problems.append(f"`fleetbgp {first}` has no option {option}{nearest(option, command.options)}")
            elif command.options[option] and not value:
                next(rest, None)
        elif not positional_seen:
            positional_seen = True
            if command.choices and _WORD.fullmatch(token) and token not in command.choices:
                problems.append(f"`fleetbgp {first} {token}`: {token!r} is not one of "
                                f"{', '.join(command.choices)}{nearest(token, command.choices)}")
    return problems


@cache
def source_text() -> str:
    """The text of the agent, roles, playbooks and plugins: where the agent's messages are written."""
    paths = [*(ROOT / "agent" / "src").rglob("*.py"), *(ROOT / "roles").rglob("*.yml"),
             *(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "plugins").rglob("*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def cli_problems(docs: Iterable[Path]) -> tuple[list[str], int]:
    """(problems, how many `fleetbgp` command lines the docs show). A backtick span that is a
    message the code writes (`fleetbgp shutting down`) is no command."""
    _top, commands = cli()
    problems: list[str] = []
    seen = 0
    for line in doc_lines(docs):
        for code in line.code:
            for args in invocations(code):
                if (args and args[0] not in commands and code != line.text and len(code) > 15
                        and code in source_text()):
                    continue
                seen += 1
                problems += [f"{where(line.doc, line.number)}: {p}" for p in command_problems(args)]
    return problems, seen


# -- playbooks, modules, roles ----------------------------------------------------------------------

_CONTENT = re.compile(r"(?<![\w.])fleet\.bgp\.([a-z][a-z0-9_]*)(\.\w)?")
_PLAYBOOK_RUN = re.compile(r"ansible-playbook\s+fleet\.bgp\.([a-z][a-z0-9_]*)")
_ROLE_DOC = re.compile(r"-t\s+role\s+fleet\.bgp\.([a-z][a-z0-9_]*)")
_PLAYBOOK_FILE = re.compile(r"(?<![\w/.-])playbooks/([\w/-]+\.ya?ml)")


def collection_content() -> dict[str, set[str]]:
    return {
        "playbook": {p.stem for p in (ROOT / "playbooks").glob("*.yml")},
        "module": {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"},
        "role": {p.name for p in (ROOT / "roles").iterdir() if (p / "meta").is_dir()},
    }


def content_problems(docs: Iterable[Path]) -> tuple[list[str], int]:
    """(problems, how many fleet.bgp.NAME and playbooks/FILE mentions the docs have)."""
    content = collection_content()
    everything = set().union(*content.values())
    problems: list[str] = []
    seen = 0
    for line in doc_lines(docs):
        here = where(line.doc, line.number)
        for m in _CONTENT.finditer(line.text):
            if m.group(2):  # fleet.bgp.NAME.md and the like: a file name
                continue
            seen += 1
            if m.group(1) not in everything:
                problems.append(f"{here}: fleet.bgp.{m.group(1)} is no playbook, module or role of the "
                                f"collection{nearest(m.group(1), everything)}")
        for pattern, kind in ((_PLAYBOOK_RUN, "playbook"), (_ROLE_DOC, "role")):
            for m in pattern.finditer(line.text):
                if m.group(1) in everything and m.group(1) not in content[kind]:
                    problems.append(f"{here}: fleet.bgp.{m.group(1)} is not a {kind}"
                                    f"{nearest(m.group(1), content[kind])}")
        for m in _PLAYBOOK_FILE.finditer(line.text):
            seen += 1
            if not (ROOT / "playbooks" / m.group(1)).is_file():
                files = [str(p.relative_to(ROOT / "playbooks")) for p in (ROOT / "playbooks").rglob("*.yml")]
                problems.append(f"{here}: playbooks/{m.group(1)} does not exist{nearest(m.group(1), files)}")
    return problems, seen


# -- variables and playbook options -----------------------------------------------------------------

_VARIABLE = re.compile(r"(?<![\w.$-])(fleet_bgp_[a-z0-9_]+)(\*|\.\.\.)?")
_READ_WITH_DEFAULT = re.compile(r"\b(fleet_bgp_[a-z0-9_]+)\s*\|\s*default\(")
_EXTRA_VAR = re.compile(r"(?:^|\s)(?:-e|--extra-vars)\s+['\"]?([a-z][a-z0-9_]*)=")


class _Loader(yaml.SafeLoader):
    """Reads `!vault` and other tagged values as nothing: only the keys matter here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader) if doc]


def _keys(node: Any) -> set[str]:
    return {k for k in node if isinstance(k, str)} if isinstance(node, dict) else set()


def _names_set_in(node: Any, found: dict[str, str], source: str) -> None:
    """Facts (set_fact), registered results, tags, groups (group_by), play and task `vars`, and the
    playbook options (`new:` of an option list) in a task file or playbook."""
    if isinstance(node, list):
        for item in node:
            _names_set_in(item, found, source)
        return
    if not isinstance(node, dict):
        return
    names: set[str] = set()
    for key, value in node.items():
        if key in ("ansible.builtin.set_fact", "set_fact", "vars"):
            names |= _keys(value)
        elif key in ("ansible.builtin.group_by", "group_by") and isinstance(value, dict):
            names.add(str(value.get("key", "")))
        elif key in ("register", "new") and isinstance(value, str):
            names.add(value)
        elif key == "tags":
            names |= {t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str)}
        _names_set_in(value, found, source)
    for name in names:
        found.setdefault(name, source)


@cache
def known_variables() -> dict[str, str]:
    """Every variable name the collection defines -> where: the roles' argument specs, defaults and
    vars; what roles and playbooks set (facts, registered results, tags, groups, play vars,
    playbook options); what playbooks read with a default (their options); the lab inventory."""
    found: dict[str, str] = {}
    for path in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        for doc in _yaml(path):
            for entry in (doc.get("argument_specs") or {}).values():
                for name in _keys(entry.get("options")):
                    found.setdefault(name, str(path.relative_to(ROOT)))
    plain = [*ROOT.glob("roles/*/defaults/**/*.yml"), *ROOT.glob("roles/*/vars/**/*.yml"),
             *ROOT.glob("lab/fleet/inventory/*_vars/**/*.yml")]
    for path in sorted(plain):
        for doc in _yaml(path):
            for name in _keys(doc):
                found.setdefault(name, str(path.relative_to(ROOT)))
    tasks = [*ROOT.glob("roles/*/tasks/**/*.yml"), *ROOT.glob("roles/*/handlers/**/*.yml"),
             *ROOT.glob("playbooks/**/*.yml"), ROOT / "lab" / "fleet" / "inventory" / "hosts.yml"]
    for path in sorted(tasks):
        for doc in _yaml(path):
            _names_set_in(doc, found, str(path.relative_to(ROOT)))
    for path in sorted(ROOT.glob("playbooks/**/*.yml")):
        for m in _READ_WITH_DEFAULT.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), str(path.relative_to(ROOT)))
    return found


@cache
def old_option_names() -> frozenset[str]:
    """The old names (0.1.0) a playbook still accepts from -e, with a deprecation warning."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("old"), str) and isinstance(node.get("new"), str):
                names.add(node["old"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in ROOT.glob("playbooks/**/*.yml"):
        for doc in _yaml(path):
            walk(doc)
    return frozenset(names)


def variable_problems(docs: Iterable[Path]) -> tuple[list[str], int]:
    """(problems, how many variable and -e option mentions the docs have)."""
    known = known_variables()
    options = set(known) | old_option_names() | set(REMOVED_OPTIONS)
    problems: list[str] = []
    seen = 0
    for line in doc_lines(docs):
        here = where(line.doc, line.number)
        for m in _VARIABLE.finditer(line.text):
            name, after = m.group(1), m.group(2)
            seen += 1
            if after or name.endswith("_"):  # fleet_bgp_agent_* : a family of names
                if not any(k.startswith(name) for k in known):
                    problems.append(f"{here}: no variable starts with {name}")
            elif name not in known:
                problems.append(f"{here}: {name} is not a variable of the collection (role argument "
                                f"specs, defaults, playbook options, facts, tags, lab inventory)"
                                f"{nearest(name, known)}")
        for code in line.code:
            for m in _EXTRA_VAR.finditer(code):
                seen += 1
                if not m.group(1).startswith("fleet_bgp_") and m.group(1) not in options:
                    problems.append(f"{here}: -e {m.group(1)}= is no playbook option"
                                    f"{nearest(m.group(1), options)}")
    return problems, seen


# -- links between the docs -------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"#{1,6}\s+(.*)")


def heading_anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to
    hyphens; a repeated heading gets -1, -2, ..."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def link_problems(docs: Iterable[Path]) -> tuple[list[str], int]:
    """(problems, how many relative links the docs have): every link to a file of the repository
    leads to one, and its #anchor to a heading of it."""
    problems: list[str] = []
    seen = 0
    for line in doc_lines(docs):
        for m in _LINK.finditer(line.text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            seen += 1
            path, _, anchor = target.partition("#")
            linked = (line.doc.parent / path).resolve() if path else line.doc
            here = where(line.doc, line.number)
            if not linked.exists():
                problems.append(f"{here}: the link {target} leads nowhere: no file {path}")
            elif anchor and linked.suffix == ".md" and anchor not in (known := heading_anchors(linked)):
                problems.append(f"{here}: the link {target}: no heading #{anchor} in {path or 'this file'}"
                                f"{nearest(anchor, known)}")
    return problems, seen
