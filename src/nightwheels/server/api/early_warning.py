"""The early warning built on the compatibility record: the matrix, per-build verdicts,
known-bad builds (see docs/early-warning.md)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from nightwheels.core.alerts import ChannelInfo
from nightwheels.server.api.deps import AuthFirstRoute, PrincipalDep, ReadSession, ServicesDep
from nightwheels.services import build_verdicts, compat_matrix, known_bad, upstream_alerts

router = APIRouter(tags=["early warning"], route_class=AuthFirstRoute)


class CellOut(BaseModel):
    upstream: str
    downstream: str
    verdict: str
    outcome: str
    tested_at: datetime
    python: str
    platform: str
    version: str
    filename: str
    sha256: str
    run_url: str | None
    culprits: list[str]
    first_bad: str | None
    known_bad: str | None
    known_bad_link: str | None


class MatrixOut(BaseModel):
    upstreams: list[str]
    downstreams: list[str]
    cells: list[CellOut]
    pythons: list[str]
    platforms: list[str]
    python: str | None
    platform: str | None
    generated_at: datetime


@router.get("/compat/matrix")
def matrix(
    session: ReadSession,
    python: str | None = Query(default=None, max_length=40, description="a prefix: 3.12"),
    platform: str | None = Query(default=None, max_length=40, description="a part: linux"),
) -> MatrixOut:
    """Every upstream with nightlies against every downstream that reports: the latest
    result of each pair (passed, culprit, failed-other, could-not-run, stale)."""
    found = compat_matrix.matrix(session, python=python or None, platform=platform or None)
    return MatrixOut(
        upstreams=found.upstreams,
        downstreams=found.downstreams,
        cells=[
            CellOut(
                upstream=c.upstream,
                downstream=c.downstream,
                verdict=c.verdict.value,
                outcome=c.outcome,
                tested_at=c.tested_at,
                python=c.python,
                platform=c.platform,
                version=c.version,
                filename=c.filename,
                sha256=c.sha256,
                run_url=c.run_url,
                culprits=list(c.culprits),
                first_bad=c.first_bad,
                known_bad=c.known_bad.reason if c.known_bad else None,
                known_bad_link=c.known_bad.link if c.known_bad else None,
            )
            for c in sorted(found.cells.values(), key=lambda c: (c.upstream, c.downstream))
        ],
        pythons=found.pythons,
        platforms=found.platforms,
        python=found.python,
        platform=found.platform,
        generated_at=found.generated_at,
    )


class VerdictOut(BaseModel):
    downstream: str
    verdict: str
    tested_at: datetime
    python: str
    platform: str
    first_bad: bool


class BuildOut(BaseModel):
    version: str
    uploaded_at: datetime
    files: list[str]
    tested_by: int
    passed: int
    failed: int
    culprit: int
    could_not_run: int
    named_first_bad_by: list[str]
    known_bad: str | None
    known_bad_link: str | None
    downstreams: list[VerdictOut]


@router.get("/projects/{name}/builds")
def builds(
    name: str, session: ReadSession, limit: int = Query(default=10, ge=1, le=20)
) -> list[BuildOut]:
    """The newest builds of a project, each with the downstreams that tested it."""
    from nightwheels.core.verdicts import Verdict

    return [
        BuildOut(
            version=b.version,
            uploaded_at=b.uploaded_at,
            files=b.files,
            tested_by=len(b.downstreams),
            passed=b.count(Verdict.PASSED),
            failed=b.failed,
            culprit=b.count(Verdict.CULPRIT),
            could_not_run=b.count(Verdict.COULD_NOT_RUN),
            named_first_bad_by=b.named_first_bad,
            known_bad=b.known_bad,
            known_bad_link=b.known_bad_link,
            downstreams=[
                VerdictOut(
                    downstream=d.downstream,
                    verdict=d.verdict.value,
                    tested_at=d.tested_at,
                    python=d.python,
                    platform=d.platform,
                    first_bad=d.first_bad,
                )
                for d in b.downstreams
            ],
        )
        for b in build_verdicts.build_verdicts(session, name, limit=limit)
    ]


class KnownBadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, max_length=100)
    sha256: list[str] = Field(default_factory=list, max_length=200)
    reason: str = Field(max_length=known_bad.MAX_REASON)
    link: str | None = Field(default=None, max_length=500)


class BuildRefIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, max_length=100)
    sha256: list[str] = Field(default_factory=list, max_length=200)


@router.get("/projects/{name}/known-bad")
def list_known_bad(name: str, session: ReadSession) -> list[known_bad.Mark]:
    return known_bad.known_bad(session, name)


@router.post("/projects/{name}/known-bad", status_code=201)
def mark(
    name: str, body: KnownBadIn, services: ServicesDep, principal: PrincipalDep
) -> list[known_bad.Mark]:
    """Mark a build as a known regression (project admins): it stays installable."""
    with services.db.write() as session:
        return known_bad.mark_known_bad(
            session, principal, name, reason=body.reason, version=body.version,
            sha256=body.sha256, link=body.link,
        )  # fmt: skip


@router.post("/projects/{name}/known-bad/remove")
def unmark(
    name: str, body: BuildRefIn, services: ServicesDep, principal: PrincipalDep
) -> list[str]:
    with services.db.write() as session:
        return known_bad.unmark_known_bad(
            session, principal, name, version=body.version, sha256=body.sha256
        )


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="webhook | github | email", max_length=20)
    target: str = Field(max_length=500, description="URL, OWNER/NAME, or an e-mail address")
    secret: str | None = Field(
        default=None,
        max_length=500,
        description="the webhook's signing secret, or a GitHub token that may open issues",
    )
    digest: bool = Field(default=False, description="one message a day instead of each alert")


class AlertOut(BaseModel):
    id: int
    upstream: str
    build_version: str
    build_filename: str
    build_sha256: str
    downstream: str
    failures: list[str]
    run_url: str | None
    state: str
    runs: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None


@router.get("/projects/{name}/alert-channels")
def channels(name: str, session: ReadSession, principal: PrincipalDep) -> list[ChannelInfo]:
    """The project's alert channels (its admins only; a secret is never shown again)."""
    return upstream_alerts.list_channels(session, principal, name)


@router.post("/projects/{name}/alert-channels", status_code=201)
def add_channel(
    name: str, body: ChannelIn, services: ServicesDep, principal: PrincipalDep
) -> ChannelInfo:
    """Opt in to hearing when a downstream's bisect names one of this project's nightlies."""
    with services.db.write() as session:
        info = upstream_alerts.add_channel(
            session, principal, name, kind=body.kind, target=body.target,
            secret=body.secret, digest=body.digest,
        )  # fmt: skip
        return info


@router.delete("/projects/{name}/alert-channels/{channel_id}", status_code=204)
def remove_channel(
    name: str, channel_id: int, services: ServicesDep, principal: PrincipalDep
) -> None:
    with services.db.write() as session:
        upstream_alerts.remove_channel(session, principal, name, channel_id)


@router.get("/projects/{name}/alerts")
def alerts(name: str, session: ReadSession) -> list[AlertOut]:
    """The project's upstream alerts, newest first (public, like the record they come from)."""
    return [
        AlertOut(**{k: v for k, v in a.__dict__.items() if k != "known_bad"})
        for a in upstream_alerts.list_alerts(session, name)
    ]
