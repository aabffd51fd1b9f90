"""Release version parsing and comparison.

Lab tags such as ``1.1.0-fault-crash`` are builds of release 1.1.0 with a fault
switched on, so only the leading ``MAJOR.MINOR.PATCH`` takes part in comparisons
(unlike SemVer, where a suffix would mark an earlier pre-release).
"""

import re

_RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?$")


def release_key(version: str) -> tuple[int, int, int]:
    """Return the comparable ``(major, minor, patch)`` of a version string.

    Raises ValueError for anything that does not start with three numbers.
    """
    match = _RELEASE.match(version.strip())
    if not match:
        raise ValueError(f"not a release version (want MAJOR.MINOR.PATCH[-suffix]): {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def at_least(version: str, minimum: str) -> bool:
    """True when ``version`` is the same release as ``minimum`` or a later one."""
    return release_key(version) >= release_key(minimum)
