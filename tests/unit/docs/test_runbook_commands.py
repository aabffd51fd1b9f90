"""Every command a runbook quotes is a command of this repository.

Commands are taken from fenced code blocks (one per line, a leading `$ ` prompt dropped)
and from inline code spans of the three docs/RUNBOOK_*.md and docs/GOVERNANCE.md, when they start
with `ansible-playbook`, `make`, `erpctl` or `python3 lab/labctl.py`. Each must name:
a playbook at the repository root or in playbooks/; a target of the Makefile; an erpctl
subcommand (and action) that erpctl's own argparse parser accepts; a labctl subcommand.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "docs" / name for name in ("RUNBOOK_DEPLOYMENT.md", "RUNBOOK_INCIDENT.md", "RUNBOOK_BACKUP_RESTORE.md",
                                          "GOVERNANCE.md")]
PREFIXES = ("ansible-playbook", "make", "erpctl", "python3 lab/labctl.py")

# Playbooks a runbook may name before they exist (a documented procedure ahead of its playbook).
# A command naming one passes while the file is missing; once the file exists it is
# checked like any other. Empty: every playbook the runbooks name exists.
PENDING_PLAYBOOKS: set[str] = set()

_FENCE = re.compile(r"^\s*```[^\n]*\n(.*?)^\s*```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def _starts_with_prefix(text):
    return any(text == prefix or text.startswith(prefix + " ") for prefix in PREFIXES)


def extract_commands(markdown):
    """Quoted commands of a Markdown text, in order of appearance."""
    commands = []
    for block in _FENCE.findall(markdown):
        for line in block.splitlines():
            line = line.strip()
            line = line[2:] if line.startswith("$ ") else line
            line = line.split(" #", 1)[0].strip()
            if _starts_with_prefix(line):
                commands.append(line)
    without_fences = _FENCE.sub("", markdown)
    commands.extend(span.strip() for span in _INLINE.findall(without_fences) if _starts_with_prefix(span.strip()))
    return commands


def make_targets():
    targets = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_. -]+):(?!=)", line)
        if found and not line.startswith((".", "\t")):
            targets.update(found.group(1).split())
    return targets


def erpctl_commands():
    """{subcommand: allowed first positional choices or None}, from erpctl's parser."""
    sys.path.insert(0, str(REPO / "erpctl" / "src"))
    try:
        from erpctl.cli import build_parser
    finally:
        sys.path.remove(str(REPO / "erpctl" / "src"))
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction")
    commands = {}
    for name, sub in subparsers.choices.items():
        positionals = [a for a in sub._actions if not a.option_strings and a.dest != "help"]
        commands[name] = tuple(positionals[0].choices) if positionals and positionals[0].choices else None
    return commands


def labctl_commands():
    text = (REPO / "lab" / "labctl.py").read_text()
    return set(re.findall(r'add_parser\(\s*"([a-z-]+)"', text))


def check_command(command, targets, erpctl, labctl):
    """None when the command exists, "pending" for a pending playbook, else the reason."""
    words = shlex.split(command)
    if words[0] == "ansible-playbook":
        playbooks = [w for w in words[1:] if w.endswith((".yml", ".yaml")) and not w.startswith("-")]
        if not playbooks:
            return "names no playbook"
        name = playbooks[0]
        if (REPO / name).is_file() or (REPO / "playbooks" / name).is_file():
            return None
        if name in PENDING_PLAYBOOKS:
            return "pending"
        return f"playbook {name} exists neither at the root nor in playbooks/"
    if words[0] == "make":
        named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        missing = [t for t in named if t not in targets]
        return f"make target(s) {missing} not in the Makefile" if missing or not named else None
    if words[0] == "erpctl":
        if len(words) < 2 or words[1] not in erpctl:
            return f"erpctl has no subcommand {words[1:2]}"
        choices = erpctl[words[1]]
        if choices is not None and (len(words) < 3 or words[2] not in choices):
            return f"erpctl {words[1]} expects one of {choices}"
        return None
    if words[:2] == ["python3", "lab/labctl.py"]:
        return None if len(words) > 2 and words[2] in labctl else f"labctl has no subcommand {words[2:3]}"
    return "unknown command"


@pytest.fixture(scope="module")
def context():
    return make_targets(), erpctl_commands(), labctl_commands()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_quoted_command_exists(doc, context):
    assert doc.is_file(), f"{doc} is missing"
    problems = [f"{command!r}: {reason}" for command in extract_commands(doc.read_text())
                if (reason := check_command(command, *context)) not in (None, "pending")]
    assert not problems, "\n".join(problems)


def test_the_runbooks_quote_enough_checked_commands(context):
    commands = [command for doc in DOCS for command in extract_commands(doc.read_text())]
    checked = [command for command in commands if check_command(command, *context) is None]
    assert len(checked) >= 10, f"only {len(checked)} checked commands: {checked}"
    kinds = {shlex.split(command)[0] for command in checked}
    assert {"ansible-playbook", "erpctl", "make"} <= kinds


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("Run `ansible-playbook health.yml -l prod` now.", ["ansible-playbook health.yml -l prod"]),
        ("```sh\n$ erpctl status --env lab\nmake lab   # comment\necho no\n```\n",
         ["erpctl status --env lab", "make lab"]),
        ("`makefile` and `erpctlx` are not commands", []),
        ("   ```sh\n   python3 lab/labctl.py up\n   ```\n", ["python3 lab/labctl.py up"]),
    ],
)
def test_extract_commands(markdown, expected):
    assert extract_commands(markdown) == expected


@pytest.mark.parametrize(
    ("command", "ok"),
    [
        ("ansible-playbook incident.yml -l prod", True),
        ("ansible-playbook nosuch.yml -l prod", False),
        ("make lab-down", True),
        ("make no-such-target", False),
        ("erpctl lock status --env prod", True),
        ("erpctl lock open --env prod", False),
        ("erpctl deploy --env prod", False),
        ("python3 lab/labctl.py up", True),
        ("python3 lab/labctl.py explode", False),
    ],
)
def test_check_command_rejects_what_does_not_exist(command, ok, context):
    assert (check_command(command, *context) is None) is ok
