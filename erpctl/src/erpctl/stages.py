"""Rollout stages: ``canary,50%,100%`` -> ordered host lists, via the collection's plan_batches."""

from __future__ import annotations

from dataclasses import dataclass

from erpctl._shared import batches
from erpctl.errors import ErpctlError


def stages_text(spec) -> str:
    """An inventory's erp_rollout_batches (or the collection's default) as --stages text."""
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    return ",".join("canary" if index == 0 and item == 1 else str(item) for index, item in enumerate(items))


# The batches deploy.yml uses where the inventory sets no erp_rollout_batches.
DEFAULT_STAGES = stages_text(batches.DEFAULT_SPEC)


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    hosts: tuple[str, ...]


def parse_stage_spec(text: str) -> list:
    """``"canary,50%,3"`` -> ``[1, "50%", 3]`` (``canary`` is one host).

    :raises ErpctlError: on an empty or malformed spec, naming the bad item.
    """
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise ErpctlError("--stages: empty; example: canary,50%,100%")
    spec = []
    for item in items:
        lowered = item.lower()
        if lowered == "canary":
            spec.append(1)
        elif lowered.isascii() and lowered.isdigit():
            spec.append(int(lowered))
        elif lowered.endswith("%"):
            spec.append(lowered)
        else:
            raise ErpctlError(f"--stages: {item!r} is not canary, a host count or a percentage; "
                              "example: canary,50%,100%")
    # Let plan_batches judge counts and percentages, so the rules are the deploy's own.
    try:
        batches.batch_sizes(max(1, 100), spec)
    except (TypeError, ValueError) as exc:
        raise ErpctlError(f"--stages: {exc}") from None
    return spec


def plan_stages(hosts: list[str], spec_text: str) -> list[Stage]:
    """Split the environment's app hosts into stages; names say what the user asked for."""
    spec = parse_stage_spec(spec_text)
    names = [item.strip() for item in str(spec_text).split(",")]
    try:
        planned = batches.plan_batches(list(hosts), spec)
    except (TypeError, ValueError) as exc:
        raise ErpctlError(f"--stages: {exc}") from None
    stages = []
    for index, stage_hosts in enumerate(planned):
        name = names[min(index, len(names) - 1)]
        if index >= len(names):
            name = f"{name} (repeat {index - len(names) + 2})"
        stages.append(Stage(index + 1, name, tuple(stage_hosts)))
    return stages
