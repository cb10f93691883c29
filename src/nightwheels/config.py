"""Server settings, from ``NIGHTWHEELS_*`` environment variables (or arguments)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightwheels.core.trusted_publishing import GITHUB_ISSUER, GITHUB_JWKS_URL

GIB = 1024**3


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTWHEELS_", extra="ignore")

    data: Path = Field(default=Path("nightwheels-data"), description="data directory")
    database_url: str | None = Field(default=None, description="default: SQLite in data dir")
    storage: str | None = Field(default=None, description="file path or s3://bucket/prefix")
    base_url: str | None = Field(default=None, description="public URL, for links and exports")

    allow_replace: bool = True
    allow_sdist: bool = False
    max_upload_size: int = 2 * GIB
    pep708_tracks: bool = True
    # Serve file downloads by redirect to the object store (presigned or public URL).
    redirect_files: bool = False
    tracks_url: str = "https://pypi.org/simple/{name}/"

    # Cross-process cache coherence: how often to look for changes made elsewhere.
    serial_poll_interval: float = 0.25

    # Failed authentications allowed per source address per minute.
    auth_failures_per_minute: int = 30

    # Trusted publishing (GitHub Actions OIDC): whose tokens are accepted, for which audience.
    oidc_issuer: str = GITHUB_ISSUER
    oidc_audience: str = "nightwheels"
    oidc_jwks_url: str = GITHUB_JWKS_URL
    # Lifetime of the upload token a CI job gets in exchange for its OIDC token.
    trusted_publishing_token_minutes: int = Field(default=15, ge=1, le=120)

    # Web UI sign-in: absolute lifetime of a browser session, and how long it survives idle.
    session_hours: float = Field(default=12, gt=0)
    session_idle_minutes: float = Field(default=120, gt=0)

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data / 'nightwheels.db').resolve()}"

    @property
    def storage_url(self) -> str:
        return self.storage or str((self.data / "files").resolve())

    @cached_property
    def tmp_dir(self) -> Path:
        return (self.data / "tmp").resolve()
