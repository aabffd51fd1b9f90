"""Durations such as ``60s``, ``2m``, ``1m30s``, ``1h`` (a bare number is seconds)."""

from __future__ import annotations

import re

from erpctl.errors import ErpctlError

_UNITS = {"h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in ``text``; units h, m, s in that order, each at most once.

    :raises ErpctlError: naming ``option`` and the accepted forms.
    """
    value = str(text).strip().lower()
    bad = ErpctlError(f"{option}: {text!r} is not a duration (examples: 60s, 2m, 1m30s, 90)")
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    position = 0
    seconds = 0.0
    seen = []
    for match in _PART.finditer(value):
        if match.start() != position:
            raise bad
        unit = match.group(2)
        if seen and list(_UNITS).index(unit) <= list(_UNITS).index(seen[-1]):
            raise bad
        seen.append(unit)
        seconds += float(match.group(1)) * _UNITS[unit]
        position = match.end()
    if not seen or position != len(value):
        raise bad
    return seconds


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``0.5`` -> ``0.5s``; ``0.031`` -> ``0s``."""
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest else "")
