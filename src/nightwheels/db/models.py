"""SQLAlchemy models: the whole index state except file bytes.

Invariants:
- every change to a project bumps ``Project.serial`` (to the new global serial) in the
  same transaction, so caches and ETags key on it;
- a live file (``removed_at IS NULL``) is unique per (project, label, filename) and per
  (project, label, version_key, tag_key): its identity is the normalised version and the
  wheel tags, not the filename (core/filenames.py); replaced and pruned files stay as
  rows with ``removed_at`` set, for history;
- ``audit_events`` is append-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from nightwheels.core.filenames import parse_filename


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class IndexState(Base):
    """One row: the global serial, bumped by every change to any project, and the index's
    totals, which each bump changes by its project's difference (services/serials.py), so
    that pages reporting them read one row whatever the number of projects."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, default=0)
    projects: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    live_files: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    live_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # PEP 503 normalised
    display_name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    repository_url: Mapped[str | None] = mapped_column(String(500))
    # Per-project overrides; NULL means "use the server setting".
    allow_replace: Mapped[bool | None] = mapped_column(Boolean)
    retention_keep: Mapped[int | None] = mapped_column(Integer)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    retention_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Aggregates of the project's file rows, kept current with every serial bump
    # (services/stats.py): pages that summarise the whole index read these, not the files.
    live_files: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    live_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    live_versions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    history_files: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    history_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_upload_at: Mapped[datetime | None] = mapped_column()  # any row, removed ones too
    last_live_upload_at: Mapped[datetime | None] = mapped_column()

    # PEP 792 (core/project_status.py): active | archived | deprecated | quarantined.
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)

    files: Mapped[list[File]] = relationship(back_populates="project")
    roles: Mapped[list[ProjectRole]] = relationship(back_populates="project")


class UploadDay(Base):
    """Files uploaded per UTC day (``YYYY-MM-DD``), counted as they are recorded.

    The freshness chart reads 60 of these rows instead of every upload of 60 days.
    """

    __tablename__ = "upload_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    files: Mapped[int] = mapped_column(BigInteger, default=0)


def _identity(context: Any) -> tuple[str, str]:
    dist = parse_filename(context.get_current_parameters()["filename"])
    return dist.version_key, dist.tag_key


class File(Base):
    __tablename__ = "files"
    __table_args__ = (
        Index(
            "uq_files_live",
            "project_id",
            "label",
            "filename",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        Index(
            "uq_files_identity",
            "project_id",
            "label",
            "version_key",
            "tag_key",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        Index("ix_files_project_label", "project_id", "label", "removed_at"),
        Index("ix_files_sha256", "sha256"),
        Index("ix_files_uploaded_at", "uploaded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64), default="main")
    filename: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(100))  # normalised PEP 440 string
    # The file's identity within (project, label): DistFilename.version_key and .tag_key,
    # derived from the filename when an insert does not give them.
    version_key: Mapped[str | None] = mapped_column(
        String(100), default=lambda ctx: _identity(ctx)[0]
    )
    tag_key: Mapped[str | None] = mapped_column(String(255), default=lambda ctx: _identity(ctx)[1])
    packagetype: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    requires_python: Mapped[str | None] = mapped_column(String(200))
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None] = mapped_column()
    removed_reason: Mapped[str | None] = mapped_column(String(50))  # replaced | pruned | deleted

    project: Mapped[Project] = relationship(back_populates="files")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(300))
    organisation: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ProjectRole(Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("user_id", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))  # admin | uploader
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
    project: Mapped[Project] = relationship(back_populates="roles")


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_user", "user_id"),
        UniqueConstraint("jti", name="uq_tokens_jti"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # NULL for the short-lived tokens minted by trusted publishing (``publisher_id`` set).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the whole token
    permissions: Mapped[list[str]] = mapped_column()  # e.g. ["upload"]
    projects: Mapped[list[str] | None] = mapped_column(JSON)  # normalised names; None = any
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # Short-lived tokens minted by trusted publishing have no user row of their own.
    publisher_id: Mapped[int | None] = mapped_column(
        ForeignKey("trusted_publishers.id", ondelete="CASCADE")
    )
    # The ``jti`` of the OIDC token exchanged for this one: unique, so each is used once.
    jti: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User | None] = relationship()


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_name: Mapped[str] = mapped_column(String(200))  # normalised
    reason: Mapped[str] = mapped_column(Text)
    repository_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class AccessRequestComment(Base):
    __tablename__ = "access_request_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrustedPublisher(Base):
    __tablename__ = "trusted_publishers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20), default="github")
    repository: Mapped[str] = mapped_column(String(200))  # owner/name
    workflow: Mapped[str] = mapped_column(String(200))  # e.g. nightly.yml
    environment: Mapped[str | None] = mapped_column(String(200))
    # The one git ref it publishes from (e.g. refs/heads/main); NULL: any ref.
    ref: Mapped[str | None] = mapped_column(String(255))
    # GitHub's numeric ids, pinned at registration or on the first exchange: a repository
    # re-created under the same name by someone else has new ones.
    repository_owner_id: Mapped[str | None] = mapped_column(String(20))
    repository_id: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_project", "project", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(200))  # user name or publisher
    action: Mapped[str] = mapped_column(String(50))
    project: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(100))  # client address
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _audit_is_append_only(_mapper: Any, _connection: Any, target: AuditEvent) -> None:
    raise ValueError(f"audit event {target.id} is append-only: it cannot be changed or deleted")


class CompatRun(Base):
    """One downstream project's test run against nightlies, as reported by ``nightwheels test``."""

    __tablename__ = "compat_runs"
    __table_args__ = (Index("ix_compat_runs_downstream", "downstream", "reported_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    downstream: Mapped[str] = mapped_column(String(200))  # PEP 503 normalised
    repository: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))  # passed | failed | install-error
    python: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(200))
    run_url: Mapped[str | None] = mapped_column(String(500))
    commit: Mapped[str | None] = mapped_column(String(64))
    tests_passed: Mapped[int] = mapped_column(Integer, default=0)
    tests_failed: Mapped[int] = mapped_column(Integer, default=0)
    culprits: Mapped[list[str]] = mapped_column(default=list)
    tested_at: Mapped[datetime] = mapped_column()
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    reporter: Mapped[str | None] = mapped_column(String(100))
    # The failing test ids (at most 200), so that a changed failure set is told apart.
    failures: Mapped[list[str]] = mapped_column(default=list)

    nightlies: Mapped[list[CompatNightly]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )


class CompatNightly(Base):
    """An upstream nightly file that a reported run used."""

    __tablename__ = "compat_nightlies"
    __table_args__ = (Index("ix_compat_nightlies_project", "project", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("compat_runs.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(String(200))  # the upstream, normalised
    version: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime | None] = mapped_column()
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"))
    culprit: Mapped[bool] = mapped_column(Boolean, default=False)
    # The bisect named this file's build as the first bad one (it may be older than the
    # file the run tested, and then is recorded on its own row).
    first_bad: Mapped[bool] = mapped_column(Boolean, default=False)

    run: Mapped[CompatRun] = relationship(back_populates="nightlies")


class WebSession(Base):
    """A signed-in browser: the cookie holds a random secret; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))  # per-session form token
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    source: Mapped[str | None] = mapped_column(String(100))


class FreshnessNotice(Base):
    """What one notifier last told a project's maintainers about stale nightlies.

    ``episode`` is the last upload the notice is about: a new upload starts a new episode.
    ``suppressed_until`` is set when a maintainer closed the notice by hand.
    """

    __tablename__ = "freshness_notices"
    __table_args__ = (UniqueConstraint("project_id", "notifier"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    notifier: Mapped[str] = mapped_column(String(50))
    episode: Mapped[datetime | None] = mapped_column()
    level: Mapped[str | None] = mapped_column(String(10))  # warn | final; None: nothing open
    ref: Mapped[str | None] = mapped_column(String(300))  # e.g. an issue number
    is_open: Mapped[bool] = mapped_column(Boolean, default=False)
    suppressed_until: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthFailure(Base):
    """One failed authentication from a source address, kept for the throttle's window.

    Shared through the database so that every server process counts the same failures.
    """

    __tablename__ = "auth_failures"
    __table_args__ = (Index("ix_auth_failures_source_at", "source", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_files_removed_at", File.removed_at)

# The serial poll asks which projects changed since a serial (services/serials.py).
Index("ix_projects_serial", Project.serial)
# The freshness dashboard pages through projects by their last live upload.
Index("ix_projects_last_live_upload", Project.last_live_upload_at, Project.name)


class UploadSession(Base):
    """A publishing session (the idea of PEP 694): the jobs of a CI matrix each upload into
    it, and one publish makes all its files visible in one transaction, or none.

    Until then its files are :class:`PendingFile` rows: not live, listed nowhere but the
    session's own preview index. A session never published expires and leaves nothing.
    """

    __tablename__ = "upload_sessions"
    __table_args__ = (Index("ix_upload_sessions_project_name", "project_id", "name", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(64), default="main")
    state: Mapped[str] = mapped_column(
        String(16), default="open"
    )  # open|published|cancelled|expired
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()

    project: Mapped[Project] = relationship()
    files: Mapped[list[PendingFile]] = relationship(
        back_populates="upload_session", cascade="all, delete-orphan"
    )


class PendingFile(Base):
    """A file uploaded into an open session: its blob is stored, its row not yet live."""

    __tablename__ = "pending_files"
    __table_args__ = (
        UniqueConstraint("session_id", "filename", name="uq_pending_files_session_filename"),
        Index("ix_pending_files_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200))  # the metadata's Name
    version: Mapped[str] = mapped_column(String(100))
    packagetype: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    requires_python: Mapped[str | None] = mapped_column(String(200))
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploader: Mapped[str] = mapped_column(String(200))

    upload_session: Mapped[UploadSession] = relationship(back_populates="files")


class KnownBadBuild(Base):
    """A nightly file an upstream's admin marked as a known regression: it stays installable
    (for bisecting), and downstream reports and the matrix point to the fix."""

    __tablename__ = "known_bad_builds"
    __table_args__ = (UniqueConstraint("project_id", "sha256", name="uq_known_bad_project_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    marked_by: Mapped[str] = mapped_column(String(200))
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertChannel(Base):
    """Where an upstream wants to hear that a downstream's bisect blamed its nightly."""

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # webhook | github | email
    target: Mapped[str] = mapped_column(String(500))  # URL, owner/repo, or address
    # The webhook's signing secret, or the GitHub token the upstream provides: needed in
    # clear to use them, so shown to nobody after it is set (not even its admins).
    secret: Mapped[str | None] = mapped_column(String(500))
    digest: Mapped[bool] = mapped_column(Boolean, default=False)  # one message a day
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UpstreamAlert(Base):
    """One alert per (upstream build, downstream, failure set): later runs update it, and a
    pass with a newer build resolves it."""

    __tablename__ = "upstream_alerts"
    __table_args__ = (
        UniqueConstraint(
            "upstream", "build_sha256", "downstream", "failures_key", name="uq_upstream_alerts_key"
        ),
        Index("ix_upstream_alerts_state", "state", "upstream"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upstream: Mapped[str] = mapped_column(String(200))
    build_sha256: Mapped[str] = mapped_column(String(64))  # the first bad build's file
    build_filename: Mapped[str] = mapped_column(String(255))
    build_version: Mapped[str] = mapped_column(String(100))
    downstream: Mapped[str] = mapped_column(String(200))
    failures_key: Mapped[str] = mapped_column(String(64))  # sha256 of the sorted failure ids
    failures: Mapped[list[str]] = mapped_column(default=list)
    run_url: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    runs: Mapped[int] = mapped_column(Integer, default=1)
    last_run_id: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    # What was delivered, per channel id: {"<id>": {"at": ..., "state": ..., "issue": N}}
    deliveries: Mapped[dict[str, Any]] = mapped_column(default=dict)
