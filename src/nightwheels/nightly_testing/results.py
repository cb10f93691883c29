"""The saved result of ``nightwheels test`` (``--save report.json``), read by ``report``.

A nightly is identified by its file, not its version string: ``X.Y.0.dev0`` names many
different builds, so each records filename, URL, sha256 and upload time.

Every run ends in one of four outcomes: ``passed``; ``failed`` (with the failing tests);
``could-not-run`` (the tool or pytest stopped before it could tell: a bad option, no
nightlies found, pytest exit 2-5, a plugin or ``conftest.py`` that does not import; the
``step`` and the ``error`` text say where and why); ``install-error`` (the environment
could not be built).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from nightwheels.errors import ProjectConfigError

SCHEMA = "nightwheels-test-report/1"

Outcome = Literal["passed", "failed", "could-not-run", "install-error"]
# could-not-run exits 4 when pytest could not run, 2 for a usage error, 5 for no nightlies.
EXIT_CODES: dict[str, int] = {"passed": 0, "failed": 1, "install-error": 3, "could-not-run": 4}
EXIT_USAGE = 2
EXIT_NO_NIGHTLIES = 5
# Where a run that could not run stopped.
Step = Literal["configure", "nightlies", "install", "tests", "report"]
STEP_NAMES: dict[str, str] = {
    "configure": "reading the project and the options",
    "nightlies": "finding the nightlies",
    "install": "installing the test environment",
    "tests": "running pytest",
    "report": "the test job (it wrote no report)",
}


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


class Regression(BaseModel):
    """One regression: the tests it breaks, its culprit(s) and their first bad builds."""

    culprits: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=list)  # failing ids it explains (or the error)
    builds: list[CulpritBuilds] = Field(default_factory=list)


class Bisection(BaseModel):
    culprits: list[str] = Field(default_factory=list)
    baseline: Outcome = "passed"
    package_runs: int = 0
    date_runs: int = 0
    confirm_runs: int = 0  # full-suite runs on the last good and the first bad build
    builds: list[CulpritBuilds] = Field(default_factory=list)
    regressions: list[Regression] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def runs(self) -> int:
        return self.package_runs + self.date_runs + self.confirm_runs


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
    step: Step | None = None  # could-not-run: where it stopped
    error: str | None = None  # could-not-run: what was printed
    bisect: Bisection | None = None
    run_url: str | None = None
    job_url: str | None = None
    commit: str | None = None
    notes: list[str] = Field(default_factory=list)
    source: str = "nightwheels test"  # or the file a result was read from (report-log, JUnit)

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


def missing_report(path: Path, repository: str | None) -> Report:
    """What to report when the test step wrote no report: it could not run (this run)."""
    import os

    env = os.environ
    run_url = None
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    name = (repository or env.get("GITHUB_REPOSITORY") or "project").rsplit("/", 1)[-1]
    return Report(
        project=name,
        created_at=datetime.now(UTC),
        outcome="could-not-run",
        exit_code=EXIT_USAGE,
        index_url="unknown",
        stable_index_url="unknown",
        python="unknown",
        platform="unknown",
        step="report",
        error=(
            f"{path} does not exist: the test step stopped before `nightwheels test` wrote "
            "its report (a failed install of the tools, a cancelled or crashed job). "
            "The run's log says why."
        ),
        run_url=run_url,
        commit=env.get("GITHUB_SHA") or None,
    )
