"""The roles' and playbooks' task files, and a walk over every task in them."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
FILES = sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml"), *REPO.glob("playbooks/*.yml")])
SECTIONS = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")


def tasks(node):
    """Every task of a tasks file or playbook, blocks, rescues and plays' sections included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        if any(key in node for key in SECTIONS):
            for key in SECTIONS:
                yield from tasks(node.get(key) or [])
        else:
            yield node


def tasks_using(module: str) -> list[tuple[str, dict, str]]:
    """(where, task, its file's text) of every task that calls ``module``."""
    found = []
    for path in FILES:
        text = path.read_text()
        for task in tasks(yaml.safe_load(text) or []):
            if module in task:
                found.append((f"{path.relative_to(REPO)}: {task.get('name')}", task, text))
    return found
