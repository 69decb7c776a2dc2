"""Every setting, read from environment variables in this one place; each default runs.

See the settings table in the README. ``Settings.from_env()`` is called by entry points, never at
import time, so tests can pass their own ``environ``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Every environment variable of a deployment: what ``Settings.from_env`` reads, and what the
# Procfile's lines read themselves (gunicorn's workers, celery's concurrency). Whatever starts our
# processes for a test or a benchmark clears these first, so that the calling shell's values do not
# leak in. (tests/deploy/test_paas_files.py keeps this list equal to what ``from_env`` reads.)
PROCFILE_SETTINGS = frozenset({"WEB_CONCURRENCY", "WHATIF_CONCURRENCY"})
SETTING_NAMES = PROCFILE_SETTINGS | {
    "PORT",
    "GRID_API_URL",
    "SCENARIO",
    "SLOT_SECONDS",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEMO",
    "USERS_FILE",
    "INSTANCE_DIR",
    "MAX_BATCH_COMMANDS",
    "TOKEN_TTL_S",
    "AGENT_USERNAME",
    "AGENT_PASSWORD",
    "TOKEN_RATE_LIMIT",
    "LOGIN_RATE_LIMIT",
    "TRUSTED_PROXY_HOPS",
    "GSY_SIMULATION_ID",
    "WEB_THREADS",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "MAX_BODY_BYTES",
    "MAX_MARKET_SLOTS",
    "MAX_BATCH_SLOTS",
    "WHATIF_RUNS_PER_USER",
    "WHATIF_RUNS_AT_ONCE",
    "MAX_AGGREGATORS_PER_USER",
    "GSY_CONFIGURATION_ID",
    "GSY_USERNAME",
    "GSY_PASSWORD",
    "GSY_WEBSOCKET_URL",
}


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any of our settings (``SETTING_NAMES``)."""
    return {k: v for k, v in environ.items() if k not in SETTING_NAMES}


class ConfigError(ValueError):
    pass


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected on/off, got {value!r}")


def database_url(raw: str | None, instance_dir: Path) -> str:
    """SQLite under ``instance/`` by default; ``postgres://`` rewritten for psycopg 3."""
    if not raw:
        return f"sqlite:///{instance_dir / 'gridfee.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _simulation_id(raw: str | None) -> str | None:
    if not raw:
        return None
    value = raw.strip()
    if not value or len(value) > 100 or not all(c.isalnum() or c in "-_" for c in value):
        raise ConfigError(f"GSY_SIMULATION_ID must be letters, digits, '-' or '_' (a UUID), got {raw!r}")
    return value


GSY_SCHEMES = ("gsy+redis://", "gsy+https://", "gsy+http://")
"""``GRID_API_URL`` schemes of a Grid Singularity exchange: a local gsy-e over Redis, or the hosted
service's REST + websocket dialect (``gsy+http://`` for a server of ours on loopback, in tests)."""


def _grid_api_url(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    value = raw.strip()
    if not value.startswith(("http://", "https://", *GSY_SCHEMES)):
        raise ConfigError(
            "GRID_API_URL must start with http:// or https:// (a Grid Fee Console exchange), "
            f"gsy+redis:// (a local gsy-e) or gsy+https:// (Grid Singularity's hosted exchange), got {raw!r}"
        )
    return value


def _configuration_id(raw: str | None) -> str:
    value = (raw or "").strip()
    if len(value) > 100 or not all(c.isalnum() or c in "-_" for c in value):
        raise ConfigError(f"GSY_CONFIGURATION_ID must be letters, digits, '-' or '_', got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    port: int
    grid_api_url: str | None
    scenario: Path
    slot_seconds: float
    database_url: str
    redis_url: str | None
    secret_key: str
    demo: bool
    users_file: Path | None
    instance_dir: Path
    max_batch_commands: int = 2000
    token_ttl_s: int = 3600
    agent_username: str = "operator"
    agent_password: str = "operator"
    token_rate_limit: int = 30  # POST /api/v1/auth/token per client and minute; 0 = no limit
    login_rate_limit: int = 10  # POST /login (the console's form) per client and minute; 0 = no limit
    proxy_hops: int = 0  # proxies in front that set X-Forwarded-For/-Proto (a PaaS router: 1)
    gsy_simulation_id: str | None = None  # API_CLIENT_SIMULATION_ID of the SDK face; None: from the scenario
    web_threads: int = 16  # gunicorn threads per worker (Procfile); the SDK face's websockets hold one each
    # True when SECRET_KEY was unset (demo mode): the app then uses the one secret kept in the store,
    # the same for every process of the deployment (app.security.shared_secret), not ``secret_key``
    secret_generated: bool = False
    admin_username: str = "admin"  # ADMIN_PASSWORD set: this grid operator (admin right) is added once
    admin_password: str = ""
    max_body_bytes: int = 4 * 1024 * 1024  # request bodies past it: 413 (MAX_CONTENT_LENGTH)
    max_market_slots: int = 96  # market_slots of one dso_market_stats command
    max_batch_slots: int = 20_000  # commands x market_slots of one batch
    whatif_runs_per_user: int = 1  # What-if runs one user may have queued or running
    whatif_runs_at_once: int = 4  # What-if runs of all users queued or running at once
    max_aggregators_per_user: int = 20  # gsy-face aggregators one user may own
    gsy_configuration_id: str = ""  # gsy-e's CONFIGURATION_ID (its Redis channels); "" for a CLI run
    gsy_username: str = ""  # the hosted exchange's user (GRID_API_URL=gsy+https://); else AGENT_USERNAME
    gsy_password: str = ""
    gsy_websocket_url: str | None = None  # the hosted exchange's websocket base; else derived from the URL

    @property
    def gsy_dialect(self) -> str | None:
        """``"redis"`` (a local gsy-e), ``"hosted"`` (Grid Singularity's REST + websocket) or None."""
        url = self.grid_api_url or ""
        if url.startswith("gsy+redis://"):
            return "redis"
        if url.startswith(("gsy+https://", "gsy+http://")):
            return "hosted"
        return None

    @property
    def exchange_key(self) -> str:
        """Names the exchange the console drives, to key the operator side's rows."""
        return self.grid_api_url or "embedded"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        instance_dir = Path(env.get("INSTANCE_DIR") or ROOT / "instance")
        try:
            port = int(env.get("PORT") or 8050)
            slot_seconds = float(env.get("SLOT_SECONDS") or 5)
            max_batch = int(env.get("MAX_BATCH_COMMANDS") or 2000)
            token_ttl = int(env.get("TOKEN_TTL_S") or 3600)
            rate_limit = int(env.get("TOKEN_RATE_LIMIT") or 30)
            login_limit = int(env.get("LOGIN_RATE_LIMIT") or 10)
            proxy_hops = int(env.get("TRUSTED_PROXY_HOPS") or 0)
            web_threads = int(env.get("WEB_THREADS") or 16)
            limits = {
                "MAX_BODY_BYTES": int(env.get("MAX_BODY_BYTES") or 4 * 1024 * 1024),
                "MAX_MARKET_SLOTS": int(env.get("MAX_MARKET_SLOTS") or 96),
                "MAX_BATCH_SLOTS": int(env.get("MAX_BATCH_SLOTS") or 20_000),
                "WHATIF_RUNS_PER_USER": int(env.get("WHATIF_RUNS_PER_USER") or 1),
                "WHATIF_RUNS_AT_ONCE": int(env.get("WHATIF_RUNS_AT_ONCE") or 4),
                "MAX_AGGREGATORS_PER_USER": int(env.get("MAX_AGGREGATORS_PER_USER") or 20),
            }
        except ValueError as exc:
            raise ConfigError(
                "PORT, SLOT_SECONDS, MAX_BATCH_COMMANDS, TOKEN_TTL_S, TOKEN_RATE_LIMIT, LOGIN_RATE_LIMIT, "
                "TRUSTED_PROXY_HOPS, WEB_THREADS, MAX_BODY_BYTES, MAX_MARKET_SLOTS, MAX_BATCH_SLOTS, "
                f"WHATIF_RUNS_PER_USER, WHATIF_RUNS_AT_ONCE, MAX_AGGREGATORS_PER_USER must be numbers: {exc}"
            ) from None
        for name, value in limits.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if slot_seconds < 0:
            raise ConfigError("SLOT_SECONDS must be >= 0 (0 = fast-forward)")
        demo = _flag(env.get("DEMO"), True)
        secret = env.get("SECRET_KEY") or ""
        if not secret:
            if not demo:
                raise ConfigError(
                    "SECRET_KEY must be set when DEMO is off (a long random string, e.g. "
                    "python -c 'import secrets; print(secrets.token_hex(32))')"
                )
            secret = secrets.token_hex(32)  # a placeholder: the app uses the store's shared one
        admin_password = env.get("ADMIN_PASSWORD") or ""
        if admin_password and len(admin_password) < 8:
            raise ConfigError("ADMIN_PASSWORD must have at least 8 characters")
        admin_username = (env.get("ADMIN_USERNAME") or "admin").strip()
        if len(admin_username) > 200 or not all(c.isalnum() or c in "-_.@" for c in admin_username):
            raise ConfigError(
                f"ADMIN_USERNAME must be letters, digits or '-', '_', '.', '@', got {admin_username!r}"
            )
        scenario = Path(env.get("SCENARIO") or ROOT / "scenarios" / "default.yaml")
        users = env.get("USERS_FILE")
        agent_user = env.get("AGENT_USERNAME") or ("operator" if demo else "")
        agent_password = env.get("AGENT_PASSWORD") or ("operator" if demo else "")
        grid_api_url = _grid_api_url(env.get("GRID_API_URL"))
        if (
            grid_api_url
            and grid_api_url.startswith(("gsy+https://", "gsy+http://"))
            and not env.get("GSY_SIMULATION_ID")
        ):
            raise ConfigError(
                "GRID_API_URL=gsy+https://... (Grid Singularity's hosted exchange) needs GSY_SIMULATION_ID: "
                "the uuid of the configuration (Collaboration or Canary Network) the console operates"
            )
        return cls(
            port=port,
            grid_api_url=grid_api_url,
            scenario=scenario,
            slot_seconds=slot_seconds,
            database_url=database_url(env.get("DATABASE_URL"), instance_dir),
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret,
            demo=demo,
            users_file=Path(users) if users else None,
            instance_dir=instance_dir,
            max_batch_commands=max_batch,
            token_ttl_s=token_ttl,
            agent_username=agent_user,
            agent_password=agent_password,
            token_rate_limit=rate_limit,
            login_rate_limit=login_limit,
            proxy_hops=max(proxy_hops, 0),
            gsy_simulation_id=_simulation_id(env.get("GSY_SIMULATION_ID")),
            web_threads=max(web_threads, 1),
            secret_generated=not env.get("SECRET_KEY"),
            admin_username=admin_username,
            admin_password=admin_password,
            max_body_bytes=limits["MAX_BODY_BYTES"],
            max_market_slots=limits["MAX_MARKET_SLOTS"],
            max_batch_slots=limits["MAX_BATCH_SLOTS"],
            whatif_runs_per_user=limits["WHATIF_RUNS_PER_USER"],
            whatif_runs_at_once=limits["WHATIF_RUNS_AT_ONCE"],
            max_aggregators_per_user=limits["MAX_AGGREGATORS_PER_USER"],
            gsy_configuration_id=_configuration_id(env.get("GSY_CONFIGURATION_ID")),
            gsy_username=env.get("GSY_USERNAME") or "",
            gsy_password=env.get("GSY_PASSWORD") or "",
            gsy_websocket_url=env.get("GSY_WEBSOCKET_URL") or None,
        )
