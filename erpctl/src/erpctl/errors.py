"""Exit codes and the one error type that becomes a one-line message."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What ``erpctl`` exits with; documented in README.md and in ``--help``."""

    OK = 0
    ROLLED_BACK = 1  # the rollout failed (stage or analysis) and the rollback succeeded
    FAILED = 2  # failed and could not roll back (or, outside rollout: the run failed)
    REFUSED = 3  # bad input, lock held, confirmation declined, nothing done
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = """exit codes:
  0    success
  1    rolled back: a stage or the canary analysis failed and the rollback succeeded
  2    failed: could not roll back (rollout), or the run failed (other commands)
  3    refused, nothing changed: bad input, unknown environment or missing inventory,
       release not in the registry, unreachable host, lock held, confirmation declined
  130  interrupted (Ctrl-C); the touched hosts were rolled back unless
       --no-rollback-on-interrupt (2 when that rollback failed)
"""


class ErpctlError(Exception):
    """An error the user can act on: printed as one line, no traceback."""

    def __init__(self, message: str, code: ExitCode = ExitCode.REFUSED):
        super().__init__(message)
        self.message = message
        self.code = code
