"""The saved result of ``nightwheels test`` (``--save report.json``), read by ``report``.

A nightly is identified by its file, not its version string: ``X.Y.0.dev0`` names many
different builds, so each records filename, URL, sha256 and upload time.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from nightwheels.errors import ProjectConfigError

SCHEMA = "nightwheels-test-report/1"

Outcome = Literal["passed", "failed", "install-error"]
EXIT_CODES: dict[str, int] = {"passed": 0, "failed": 1, "install-error": 3}


class Build(BaseModel):
    """One nightly file."""

    version: str
    filename: str
    url: str
    sha256: str | None = None
    upload_time: datetime | None = None


class Nightly(Build):
    name: str
    stable_version: str | None = None  # the latest final release on the stable index


class MissingNightly(BaseModel):
    name: str
    reason: str


class Failure(BaseModel):
    nodeid: str
    when: str  # setup | call | teardown | collect
    message: str
    details: str = ""


class Counts(BaseModel):
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    duration: float = 0.0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped + self.xfailed + self.xpassed


class CulpritBuilds(BaseModel):
    """Date bisection of one culprit across its nightly builds."""

    name: str
    last_good: Build | None = None
    first_bad: Build | None = None
    builds_considered: int = 0
    runs: int = 0
    note: str | None = None


class Bisection(BaseModel):
    culprits: list[str] = Field(default_factory=list)
    baseline: Literal["passed", "failed", "install-error"] = "passed"
    package_runs: int = 0
    date_runs: int = 0
    builds: list[CulpritBuilds] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def runs(self) -> int:
        return self.package_runs + self.date_runs


class Report(BaseModel):
    schema_: str = Field(default=SCHEMA, alias="schema")
    project: str
    project_version: str | None = None
    created_at: datetime
    outcome: Outcome
    exit_code: int
    index_url: str
    stable_index_url: str
    python: str
    platform: str
    nightlies: list[Nightly] = Field(default_factory=list)
    missing: list[MissingNightly] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    counts: Counts = Field(default_factory=Counts)
    failures: list[Failure] = Field(default_factory=list)
    install_error: str | None = None
    bisect: Bisection | None = None
    run_url: str | None = None
    commit: str | None = None

    model_config = {"populate_by_name": True}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)


def load_report(path: Path) -> Report:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectConfigError(
            f"no report at {path}: run nightwheels test --save first"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProjectConfigError(f"{path} is not a JSON report: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ProjectConfigError(f"{path} is not a nightwheels test report ({SCHEMA})")
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProjectConfigError(f"{path} is not a valid report: {where}: {first['msg']}") from None
