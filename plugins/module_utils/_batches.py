# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Rollout batch planning with the semantics of Ansible's ``serial`` keyword.

A spec such as ``[1, "50%", "100%"]`` lists batch sizes: integers are host counts,
``"N%"`` is N percent of ALL hosts. Each entry sizes one batch, the last entry repeats
until every host is covered, and a batch never takes more hosts than remain.

One deliberate difference from Ansible: a percentage is rounded UP (Ansible truncates
and then uses at least 1), so ``"50%"`` of 3 hosts is 2, never 1; a canary that should
be exactly one host is spelled ``1``.
"""

from __future__ import annotations

from fractions import Fraction

# The batches of a rollout when the inventory sets no erp_rollout_batches: one canary host,
# then half of the hosts, then the rest. deploy.yml and erpctl both read it from here.
DEFAULT_SPEC = (1, "50%", "100%")


def _describe(item):
    return f"{item!r}"


def _entry_size(index, item, total):
    """The batch size one spec entry asks for, validated."""
    where = f"batch spec item {item!r} (position {index + 1})"
    if isinstance(item, bool):
        raise TypeError(f"{where} must be a positive integer or a percentage like '50%', not a boolean")
    if isinstance(item, int):
        if item <= 0:
            raise ValueError(f"{where} must be a positive host count")
        return item
    if not isinstance(item, str):
        raise TypeError(f"{where} must be a positive integer or a percentage like '50%'")
    text = item.strip()
    if text.endswith("%"):
        try:
            percent = Fraction(text[:-1].strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{where} is not a valid percentage") from exc
        if percent <= 0 or percent > 100:
            raise ValueError(f"{where} must be a percentage in (0, 100]")
        # Rounded up and at least one host, so a small group never gets an empty batch.
        return max(1, -(-(percent * total) // 100))
    if text.isascii() and text.isdigit():
        count = int(text)
        if count <= 0:
            raise ValueError(f"{where} must be a positive host count")
        return count
    raise ValueError(f"{where} must be a positive integer or a percentage like '50%'")


def _normalize_spec(spec):
    if isinstance(spec, (int, str)) and not isinstance(spec, bool):
        return [spec]
    if not isinstance(spec, (list, tuple)):
        raise TypeError(f"batch spec must be a list like [1, '50%', '100%'], got {spec!r}")
    if not spec:
        raise ValueError("batch spec must not be empty")
    return list(spec)


def batch_sizes(total, spec):
    """Sizes of the successive batches covering ``total`` hosts under ``spec``.

    Every spec entry is validated, even entries never reached.

    :raises ValueError: naming the bad spec item, or for ``total`` < 1.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"the number of hosts must be a positive integer, got {_describe(total)}")
    entries = _normalize_spec(spec)
    wanted = [int(_entry_size(index, item, total)) for index, item in enumerate(entries)]
    sizes = []
    remaining = total
    while remaining > 0:
        size = min(wanted[min(len(sizes), len(wanted) - 1)], remaining)
        sizes.append(size)
        remaining -= size
    return sizes


def plan_batches(hosts, spec):
    """Split an ordered host list into rollout batches (list of lists, order preserved).

    :param hosts: ordered, non-empty list of unique, non-empty host name strings.
    :param spec: list of batch sizes as for Ansible's ``serial`` (or one such entry).
    :raises ValueError: on an empty host list, duplicate or invalid host names, or a bad
        spec (naming the bad item).
    """
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, (list, tuple)):
        raise TypeError(f"hosts must be a list of host names, got {hosts!r}")
    if not hosts:
        raise ValueError("hosts must not be empty")
    seen = set()
    for index, host in enumerate(hosts):
        if not isinstance(host, str) or not host.strip():
            raise ValueError(f"host {host!r} (position {index + 1}) must be a non-empty string")
        if host in seen:
            raise ValueError(f"host {_describe(host)} appears more than once")
        seen.add(host)
    batches = []
    start = 0
    for size in batch_sizes(len(hosts), spec):
        batches.append(list(hosts[start:start + size]))
        start += size
    return batches
