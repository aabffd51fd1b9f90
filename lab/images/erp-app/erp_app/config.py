"""Settings from the environment (12-factor), validated up front.

Every problem becomes a ConfigError with one line naming the variable, so the
launcher can print it and exit 2 before anything starts.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from erp_app.faults import FaultPlan
from erp_app.versions import release_key

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A missing or invalid setting; the message is one line for stderr."""


@dataclass(frozen=True)
class Settings:
    version: str
    fault: FaultPlan
    port: int = 8000
    log_level: str = "INFO"
    shutdown_grace_seconds: float = 10.0
    shutdown_drain_seconds: float = 3.0
    # Secrets stay out of repr() so a logged Settings can never leak them.
    database_url: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)


def load(env: Mapping[str, str], *, need_database: bool = False, need_secret: bool = False) -> Settings:
    """Build Settings from ``env``; ask only for what the command needs."""
    version = env.get("ERP_VERSION", "").strip()
    if not version:
        raise ConfigError("ERP_VERSION is not set (it is baked into the image at build time)")
    try:
        release_key(version)
        fault = FaultPlan.from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    database_url = env.get("ERP_DATABASE_URL", "").strip()
    if need_database:
        if not database_url:
            raise ConfigError("ERP_DATABASE_URL is required (postgresql://user:password@host:5432/db)")
        if urlsplit(database_url).scheme not in ("postgresql", "postgres"):
            raise ConfigError("ERP_DATABASE_URL must be a postgresql:// URL")
    secret_key = env.get("ERP_SECRET_KEY", "")
    if need_secret and not secret_key.strip():
        raise ConfigError("ERP_SECRET_KEY is required to serve")

    log_level = env.get("ERP_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"ERP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}; got {log_level!r}")
    port = port_from(env)
    grace = _number(env, "ERP_SHUTDOWN_GRACE_SECONDS", 10.0)
    if grace <= 0:
        raise ConfigError(f"ERP_SHUTDOWN_GRACE_SECONDS must be > 0; got {grace:g}")
    # Drain (keep serving while the load balancer notices /health/ready is 503)
    # must leave time inside the grace period to finish in-flight requests.
    drain = _number(env, "ERP_SHUTDOWN_DRAIN_SECONDS", min(3.0, grace / 2))
    if not 0 <= drain < grace:
        raise ConfigError(f"ERP_SHUTDOWN_DRAIN_SECONDS must be >= 0 and below the grace period; got {drain:g}")

    return Settings(
        version=version,
        fault=fault,
        port=port,
        log_level=log_level,
        shutdown_grace_seconds=grace,
        shutdown_drain_seconds=drain,
        database_url=database_url,
        secret_key=secret_key,
    )


def port_from(env: Mapping[str, str]) -> int:
    """ERP_PORT (default 8000); on its own because ``healthcheck`` needs nothing else."""
    port = int(_number(env, "ERP_PORT", 8000, integer=True))
    if not 1 <= port <= 65535:
        raise ConfigError(f"ERP_PORT must be between 1 and 65535; got {port}")
    return port


def redact_url(url: str) -> str:
    """The URL with its password (userinfo or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{key}=***" if key == "password" else f"{key}={value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}; got {raw!r}") from None
