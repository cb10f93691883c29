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

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from nightwheels.errors import ProjectConfigError

SCHEMA = "nightwheels-test-report/1"

Outcome = Literal["passed", "failed", "could-not-run", "install-error"]
# could-not-run exits 4 when pytest could not run, 2 for a usage error, 5 for no nightlies
# (the same numbers as cli.exits, checked by tests/test_vocabulary.py).
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


@dataclass(kw_only=True)
class Build:
    """One nightly file."""

    version: str
    filename: str
    url: str
    sha256: str | None = None
    upload_time: datetime | None = None


@dataclass(kw_only=True)
class Nightly(Build):
    name: str
    stable_version: str | None = None  # the latest final release on the stable index


@dataclass(kw_only=True)
class MissingNightly:
    name: str
    reason: str


@dataclass(kw_only=True)
class Failure:
    nodeid: str
    when: str  # setup | call | teardown | collect
    message: str
    details: str = ""


@dataclass(kw_only=True)
class Counts:
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


@dataclass(kw_only=True)
class CulpritBuilds:
    """Date bisection of one culprit across its nightly builds."""

    name: str
    last_good: Build | None = None
    first_bad: Build | None = None
    builds_considered: int = 0
    runs: int = 0
    note: str | None = None


@dataclass(kw_only=True)
class Regression:
    """One regression: the tests it breaks, its culprit(s) and their first bad builds."""

    culprits: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)  # failing ids it explains (or the error)
    builds: list[CulpritBuilds] = field(default_factory=list)


@dataclass(kw_only=True)
class Bisection:
    culprits: list[str] = field(default_factory=list)
    baseline: Outcome = "passed"
    package_runs: int = 0
    date_runs: int = 0
    confirm_runs: int = 0  # full-suite runs on the last good and the first bad build
    builds: list[CulpritBuilds] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return self.package_runs + self.date_runs + self.confirm_runs


@dataclass(kw_only=True)
class Report:
    schema_: str = SCHEMA  # "schema" in JSON
    project: str
    project_version: str | None = None
    created_at: datetime
    outcome: Outcome
    exit_code: int
    index_url: str
    stable_index_url: str
    python: str
    platform: str
    nightlies: list[Nightly] = field(default_factory=list)
    missing: list[MissingNightly] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    failures: list[Failure] = field(default_factory=list)
    install_error: str | None = None
    step: Step | None = None  # could-not-run: where it stopped
    error: str | None = None  # could-not-run: what was printed
    bisect: Bisection | None = None
    run_url: str | None = None
    job_url: str | None = None
    commit: str | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "nightwheels test"  # or the file a result was read from (report-log, JUnit)

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(self)
        data["schema"] = data.pop("schema_")
        return {"schema": data.pop("schema"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

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
    data = {("schema_" if k == "schema" else k): v for k, v in data.items()}
    try:
        return _load(Report, data, "")
    except _Invalid as exc:
        raise ProjectConfigError(f"{path} is not a valid report: {exc}") from None


# --- JSON, without a validation library: ``nightwheels test`` is measured against doing it
# by hand, and pydantic's import and model building were a third of its start-up.


class _Invalid(ValueError):
    pass


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _load(tp: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as ``tp``, checked; ``_Invalid`` says where it is not."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _load(option, value, where)
            except _Invalid as exc:
                errors.append(str(exc))
        raise _Invalid(errors[0] if errors else f"{where or 'value'}: unexpected null")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(map(str, typing.get_args(tp)))
            raise _Invalid(f"{where}: must be one of {allowed}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _Invalid(f"{where}: must be a list")
        (item,) = typing.get_args(tp)
        return [_load(item, v, f"{where}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Invalid(f"{where}: must be an object")
        _key, item = typing.get_args(tp)
        return {str(k): _load(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Invalid(f"{where or 'report'}: must be an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            here = f"{where}.{f.name}".lstrip(".")
            if f.name in value:
                kwargs[f.name] = _load(hints[f.name], value[f.name], here)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Invalid(f"{here}: missing")
        return tp(**kwargs)
    if tp is datetime:
        if not isinstance(value, str):
            raise _Invalid(f"{where}: must be a date and time")
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid(f"{where}: {value!r} is not an ISO 8601 time") from None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"{where}: must be a number")
        return float(value)
    if tp in (str, int, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise _Invalid(f"{where}: must be {tp.__name__}")
        return value
    raise _Invalid(f"{where}: unsupported type")  # pragma: no cover


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
