"""Every metric, `fleetbgp` command, playbook, module, role, variable and playbook option the docs
(README.md, docs/**/*.md) name exists, and every link between them leads somewhere. A failure lists each `FILE:LINE: problem (did you mean X?)`:
fix the doc (or the code, if the doc is right). How names are found and checked: doc_names.py."""

from __future__ import annotations

import textwrap

import doc_names
import pytest

CHECKS = {
    "metrics": doc_names.metric_problems,
    "commands": doc_names.cli_problems,
    "collection": doc_names.content_problems,
    "variables": doc_names.variable_problems,
    "links": doc_names.link_problems,
}
# Fewer mentions than this means the scan broke, not that the docs got shorter.
AT_LEAST = {"metrics": 40, "commands": 200, "collection": 300, "variables": 500, "links": 100}


@pytest.mark.parametrize("kind", CHECKS)
def test_the_docs_name_only_what_exists(kind):
    problems, seen = CHECKS[kind](doc_names.doc_files())
    assert seen >= AT_LEAST[kind], f"only {seen} {kind} found in the docs: the scan is broken"
    assert not problems, f"{len(problems)} {kind} named in the docs do not exist:\n" + "\n".join(problems)


WRONG_DOC = """\
# A doc with one wrong name per line after this one

Restarts: `fleetbgp_api_process_restarts{process}`, memory: `process_resident_memory_byte`.
```console
# fleetbgp shwo status
$ sudo fleetbgp show neighbours --json | jq .
```
`fleetbgp reload --dry-runn`, `ansible-playbook fleet.bgp.sitee -i inventory/`
`ansible-playbook fleet.bgp.agent_info`, `ansible-doc -t role fleet.bgp.route`, see playbooks/zzz.yml
Set `fleet_bgp_rollout_batchs`; every `fleet_bgp_nothing_*`; `-e forse=true`.
Right ones: `fleetbgp_session_up`, `fleetbgp show status`, `fleet_bgp_agent_*`, `-e force=true`, `-e port=53`.
"""


@pytest.fixture
def wrong_doc(tmp_path):
    path = tmp_path / "wrong.md"
    path.write_text(textwrap.dedent(WRONG_DOC), encoding="utf-8")
    return [path]


def problems(check, docs) -> list[str]:
    return [p.split("wrong.md:", 1)[1] for p in check(docs)[0]]


def test_wrong_metrics_are_named_with_line_and_the_nearest_metric(wrong_doc):
    assert problems(doc_names.metric_problems, wrong_doc) == [
        "3: fleetbgp_api_process_restarts is not a metric the agent exposes "
        "(did you mean fleetbgp_api_process_restarts_total?)",
        "3: process_resident_memory_byte is not a metric the agent exposes "
        "(did you mean process_resident_memory_bytes?)",
    ]


def test_wrong_commands_are_named_with_line_and_the_nearest_command(wrong_doc):
    assert problems(doc_names.cli_problems, wrong_doc) == [
        "5: fleetbgp has no command 'shwo' (did you mean show?)",
        "6: `fleetbgp show neighbours`: 'neighbours' is not one of status, neighbors, routes, health, "
        "processes, flows (did you mean neighbors?)",
        "8: `fleetbgp reload` has no option --dry-runn (did you mean --dry-run?)",
    ]


def test_wrong_playbooks_modules_roles_are_named(wrong_doc):
    assert problems(doc_names.content_problems, wrong_doc) == [
        "8: fleet.bgp.sitee is no playbook, module or role of the collection (did you mean site?)",
        "9: fleet.bgp.agent_info is not a playbook",
        "9: fleet.bgp.route is not a role (did you mean rollout?)",
        "9: playbooks/zzz.yml does not exist",
    ]


def test_wrong_variables_and_options_are_named(wrong_doc):
    assert problems(doc_names.variable_problems, wrong_doc) == [
        "10: fleet_bgp_rollout_batchs is not a variable of the collection (role argument specs, "
        "defaults, playbook options, facts, tags, lab inventory) (did you mean fleet_bgp_rollout_batches?)",
        "10: no variable starts with fleet_bgp_nothing_",
        "10: -e forse= is no playbook option (did you mean force?)",
    ]


def test_a_message_in_backticks_is_no_command(tmp_path):
    doc = tmp_path / "message.md"
    doc.write_text("Peers get the text `fleetbgp shutting down`; `fleetbgp shutting up` is no message.\n")
    assert problems_of(doc) == ["1: fleetbgp has no command 'shutting'"]


def problems_of(doc) -> list[str]:
    return [p.split(f"{doc.name}:", 1)[1] for p in doc_names.cli_problems([doc])[0]]


def test_the_removed_options_are_really_gone():
    alive = set(doc_names.known_variables()) | doc_names.old_option_names()
    back = set(doc_names.REMOVED_OPTIONS) & alive
    assert not back, f"doc_names.REMOVED_OPTIONS: {sorted(back)} exist again: drop them from the list"


def test_broken_links_are_named(tmp_path):
    (tmp_path / "other.md").write_text("# Other doc\n\n## The part\n", encoding="utf-8")
    doc = tmp_path / "links.md"
    doc.write_text("[ok](other.md#the-part) [web](https://example.com/x)\n"
                   "[gone](flowspec-status.md) [anchor](other.md#the-prat)\n", encoding="utf-8")
    assert [p.split("links.md:", 1)[1] for p in doc_names.link_problems([doc])[0]] == [
        "2: the link flowspec-status.md leads nowhere: no file flowspec-status.md",
        "2: the link other.md#the-prat: no heading #the-prat in other.md (did you mean the-part?)",
    ]
