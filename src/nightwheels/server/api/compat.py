"""The compatibility record: downstream results against upstream nightlies.

``POST /compat/results`` (a token with the ``report`` permission) records one run;
``GET /compat/upstream/{name}`` shows each downstream's latest result with that upstream's
nightly; ``GET /compat/downstream/{name}`` shows a downstream project's recent runs.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from nightwheels.core.names import normalize_name
from nightwheels.server.api.deps import AuthFirstRoute, PrincipalDep, ReadSession, ServicesDep
from nightwheels.services import compat

router = APIRouter(tags=["compatibility"], route_class=AuthFirstRoute)


class NightlyBody(BaseModel):
    project: str = Field(max_length=200)
    version: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    sha256: str = Field(min_length=64, max_length=64)
    uploaded_at: datetime | None = None


class ResultBody(BaseModel):
    downstream: str = Field(max_length=200)
    outcome: str = Field(max_length=20)
    python: str = Field(max_length=40)
    platform: str = Field(max_length=200)
    tested_at: datetime
    nightlies: list[NightlyBody] = Field(max_length=compat.MAX_NIGHTLIES)
    culprits: list[str] = Field(default_factory=list, max_length=50)
    repository: str | None = Field(default=None, max_length=300)
    run_url: str | None = Field(default=None, max_length=500)
    commit: str | None = Field(default=None, max_length=64)
    tests_passed: int = Field(default=0, ge=0)
    tests_failed: int = Field(default=0, ge=0)
    failures: list[str] = Field(default_factory=list, max_length=compat.MAX_FAILURES)
    first_bad: list[NightlyBody] = Field(default_factory=list, max_length=50)


class RecordedOut(BaseModel):
    id: int
    recorded: list[str]
    ignored: list[str]


class UpstreamOut(BaseModel):
    project: str
    passing: int
    failing: int
    results: list[compat.UpstreamRow]  # a dataclass of the service, validated by pydantic


class DownstreamOut(BaseModel):
    project: str
    runs: list[compat.HistoryRun]  # a dataclass of the service, validated by pydantic


@router.post("/compat/results", status_code=status.HTTP_201_CREATED)
def post_result(body: ResultBody, principal: PrincipalDep, services: ServicesDep) -> RecordedOut:
    result = compat.ResultIn(
        downstream=body.downstream,
        outcome=body.outcome,
        python=body.python,
        platform=body.platform,
        tested_at=body.tested_at,
        nightlies=[compat.NightlyIn(**n.model_dump()) for n in body.nightlies],
        culprits=body.culprits,
        repository=body.repository,
        run_url=body.run_url,
        commit=body.commit,
        tests_passed=body.tests_passed,
        tests_failed=body.tests_failed,
        failures=[f[:500] for f in body.failures],
        first_bad=[compat.NightlyIn(**n.model_dump()) for n in body.first_bad],
    )
    with services.db.write() as session:
        recorded = compat.record_result(session, principal, result)
    return RecordedOut(id=recorded.run_id, recorded=recorded.recorded, ignored=recorded.ignored)


@router.get("/compat/upstream/{name}")
def upstream(name: str, session: ReadSession) -> UpstreamOut:
    rows = compat.upstream_status(session, name)
    return UpstreamOut(
        project=normalize_name(name),
        passing=sum(r.outcome == "passed" for r in rows),
        failing=sum(r.outcome != "passed" for r in rows),
        results=rows,
    )


@router.get("/compat/downstream/{name}")
def downstream(name: str, session: ReadSession, limit: int = 50) -> DownstreamOut:
    runs = compat.downstream_history(session, name, limit)
    return DownstreamOut(project=normalize_name(name), runs=runs)
