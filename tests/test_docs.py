"""The documentation cannot drift from the code (in the spirit of sqlite-utils' test_docs.py).

The command blocks of the README and of docs/data-contract.md list every `ppss` command
with every option, as the parser defines them; every option has help text and every
command an example that the parser accepts. The register rules the readers enforce are in
the data contract.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from pipelines.cli import parser
from pipelines.config import REPO_DIR

DOCS = {"README.md": "## Command line", "docs/data-contract.md": "## 5. The command line"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in p._actions for s in a.option_strings if s.startswith("--") and s != "--help"}


def documented_commands(doc: str, heading: str) -> dict[str, str]:
    """`ppss <command> ...` lines of the first code block after `heading` (continuation lines
    are indented; `#` starts a comment)."""
    text = (REPO_DIR / doc).read_text(encoding="utf-8")
    block = text[text.index(heading) :].split("```")[1]
    commands: dict[str, str] = {}
    last = None
    for line in block.splitlines():
        line = line.split("#")[0].rstrip()
        if line.startswith("ppss "):
            last = line.split()[1]
            commands[last] = line
        elif line.strip() and last:
            commands[last] += " " + line.strip()
    return commands


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_is_documented_and_every_documented_command_exists(doc: str) -> None:
    assert set(documented_commands(doc, DOCS[doc])) == set(_subparsers())


@pytest.mark.parametrize("doc", DOCS)
def test_documented_options_are_the_parsers(doc: str) -> None:
    for command, line in documented_commands(doc, DOCS[doc]).items():
        options = _options(_subparsers()[command])
        optional = set(re.findall(r"\[(--[a-z-]+)", line))
        required = set(re.findall(r"(?<!\[)(--[a-z-]+)", line))
        assert optional | required == set(options), f"{doc}: ppss {command}"
        for name, action in options.items():
            assert (name in required) == bool(action.required), f"{doc}: ppss {command} {name} required?"
            if action.metavar:  # the placeholder the docs show is the one --help shows
                assert re.search(rf"{name} {re.escape(action.metavar)}\b", line), f"{doc}: {name} {action.metavar}"
            choices = re.search(rf"{name} ([\w|]+\|[\w|]+)", line)
            if action.choices:
                assert choices and set(choices.group(1).split("|")) == set(action.choices), f"{doc}: {name}"


def test_every_option_has_help_and_every_command_an_example_that_parses() -> None:
    for command, sub in _subparsers().items():
        for name, action in _options(sub).items():
            assert action.help and action.help != argparse.SUPPRESS, f"ppss {command} {name} has no help"
        assert sub.epilog and "example:" in sub.epilog, f"ppss {command} has no example"
        example = sub.epilog.split("example:", 1)[1].strip()
        argv = shlex.split(example)
        assert argv[:2] == ["ppss", command]
        args = parser().parse_args(argv[1:])
        assert args.command == command


def test_the_absence_threshold_reads_shares_and_percentages() -> None:
    for text in ("0.12", "12", "12%", "0,12"):
        args = parser().parse_args(["report", "--year", "2016", "--absence-threshold", text])
        assert args.absence_threshold == pytest.approx(0.12)
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "--year", "2016", "--absence-threshold", "0"])


# the register's rules as the readers and checks name them (README, "The register")
REGISTER_RULES = (
    "unknown_district",
    "encoding_mixed",
    "csv_quote",
    "personal_data",
    "programme_unknown",
    "pupil_not_in_persons",
    "programme_open_twice",
)


@pytest.mark.parametrize("rule", REGISTER_RULES)
def test_the_data_contract_states_the_register_rules(rule: str) -> None:
    contract = (REPO_DIR / "docs" / "data-contract.md").read_text(encoding="utf-8")
    section = contract[contract.index("### 1.5") : contract.index("## 2.")]
    assert f"`{rule}`" in section
    code = "".join(p.read_text(encoding="utf-8") for p in (REPO_DIR / "pipelines").rglob("*.py"))
    code += "".join(p.read_text(encoding="utf-8") for p in (REPO_DIR / "expectations").glob("*.json"))
    code += (REPO_DIR / "pipelines" / "transform" / "sql" / "checks.sql").read_text(encoding="utf-8")
    assert f'"{rule}"' in code or f"'{rule}'" in code, f"{rule} is stated but no code uses it"


def test_the_readme_links_resolve_inside_the_repository() -> None:
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):
        assert (REPO_DIR / target).exists(), target
    assert "../shared" not in readme
    assert Path(REPO_DIR / "docs" / "domain-rules.md").exists()
