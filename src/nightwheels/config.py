"""Server settings, from ``NIGHTWHEELS_*`` environment variables (or arguments)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightwheels.core.trusted_publishing import GITHUB_ISSUER, GITHUB_JWKS_URL, MAX_OIDC_LIFETIME

GIB = 1024**3


def normalize_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver nightwheels ships."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTWHEELS_", extra="ignore")

    data: Path = Field(default=Path("nightwheels-data"), description="data directory")
    database_url: str | None = Field(default=None, description="default: SQLite in data dir")
    storage: str | None = Field(default=None, description="file path or s3://bucket/prefix")
    base_url: str | None = Field(default=None, description="public URL, for links and exports")

    allow_replace: bool = True
    allow_sdist: bool = False
    max_upload_size: int = 2 * GIB
    # An upload session (nightwheels upload --session) not published by then expires.
    session_ttl_hours: float = Field(default=24, gt=0, le=7 * 24)
    pep708_tracks: bool = False  # PEP 708 was rejected (2026): off unless asked for
    # Serve file downloads by redirect to the object store (presigned or public URL).
    redirect_files: bool = False
    # Public base URL of the object store prefix (e.g. a CDN or public bucket): redirects
    # go to <storage_public_url>/<key> instead of a presigned URL.
    storage_public_url: str | None = None
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # Connections per server process (PostgreSQL): keep processes x (size + overflow)
    # under the server's max_connections, or put PgBouncer in between.
    database_pool_size: int = Field(default=5, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    tracks_url: str = "https://pypi.org/simple/{name}/"

    # Cross-process cache coherence: how often to look for changes made elsewhere.
    serial_poll_interval: float = 0.25
    # Seconds between returns of free heap memory to the OS (glibc malloc_trim); 0 = off.
    malloc_trim_interval: float = Field(default=10, ge=0)
    # Memory for rendered simple pages per server process (oldest evicted first).
    page_cache_mib: int = Field(default=256, ge=1)
    # Memory for rendered as-of pages (/as-of/<time>/simple/...), least recently used evicted.
    asof_cache_mib: int = Field(default=64, ge=1)

    # Keep a static export (folder or s3://bucket/prefix) current from this server; run it
    # on one server only. ``export_files_url``: link files there instead of copying them.
    export_static: str | None = None
    export_files_url: str | None = None
    export_interval: float = Field(default=1.0, gt=0)

    # Failed authentications allowed per source address per minute (a valid token is never
    # refused), and failed passwords per account per minute, from any address.
    auth_failures_per_minute: int = 30
    auth_failures_per_account: int = Field(default=10, ge=1)
    # Seconds a client has to send a request line and headers (slow-header clients).
    head_timeout: float = Field(default=20, gt=0)
    # Request bodies other than uploads: at most this many bytes (413 while reading).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Seconds any request body may take, plus one second per ``body_min_rate`` bytes
    # (slow-body clients; an upload at 1 MiB/s is never cut off).
    body_timeout: float = Field(default=20, gt=0)
    body_min_rate: int = Field(default=16 * 1024, ge=1)

    # Trusted publishing (GitHub Actions OIDC): whose tokens are accepted, for which audience.
    oidc_issuer: str = GITHUB_ISSUER
    oidc_audience: str = "nightwheels"
    oidc_jwks_url: str = GITHUB_JWKS_URL
    # The longest OIDC token accepted (exp - iat, seconds); GitHub's live 5 minutes.
    oidc_max_token_seconds: int = Field(default=MAX_OIDC_LIFETIME, ge=60, le=6 * 3600)
    # Lifetime of the upload token a CI job gets in exchange for its OIDC token.
    trusted_publishing_token_minutes: int = Field(default=15, ge=1, le=120)

    # Web UI sign-in: absolute lifetime of a browser session, and how long it survives idle.
    session_hours: float = Field(default=12, gt=0)
    session_idle_minutes: float = Field(default=120, gt=0)

    # Retention (docs/retention.md). Per-project overrides live on the project row.
    retention_keep: int = Field(default=5, ge=1, description="newest versions kept")
    retention_days: int = Field(default=30, ge=1, description="drop versions older than this")
    retention_tag_days: int = Field(
        default=90, ge=1, description="window of the last wheel of a platform tag"
    )
    prune_max_share: float = Field(
        default=0.5, gt=0, le=1, description="largest share of a project's files pruned unforced"
    )
    # A prune's pace: each change makes every server re-render the project's pages, so a
    # prune of 1,000 projects at once would stall serving. The prune measures that render
    # and spaces its changes so that servers spend at most this share of their time on
    # them (0: not paced by cost); projects a second is a ceiling on top (0: none).
    prune_load_share: float = Field(default=0.25, ge=0, le=1)
    prune_projects_per_second: float = Field(default=0, ge=0)
    # Seconds between scheduled maintenance runs (prune, gc, freshness notices); 0 = off.
    prune_interval: float = Field(default=0, ge=0)
    history_days: float = Field(default=30, ge=0, description="removed files stay retrievable")
    gc_grace_hours: float = Field(default=24, ge=0, description="delay before bytes are deleted")

    # Freshness: thresholds in days since a project's last upload.
    freshness_warn_days: int = Field(default=15, ge=1)
    freshness_final_days: int = Field(default=25, ge=1)
    freshness_cooldown_days: int = Field(default=60, ge=0)
    # Notifiers (any combination; none configured = no notices).
    notify_dry_run: bool = False
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    notify_webhook_url: str | None = None
    # Upstream alert webhooks are configured by project admins, not the operator: by default
    # they may not reach loopback, private or link-local addresses (no probing the server's
    # own network). Set true where the receivers are on such a network.
    alert_webhooks_allow_private: bool = False
    notify_webhook_secret: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None

    @property
    def database(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data / 'nightwheels.db').resolve()}"

    @property
    def storage_url(self) -> str:
        return self.storage or str((self.data / "files").resolve())

    @cached_property
    def tmp_dir(self) -> Path:
        return (self.data / "tmp").resolve()
