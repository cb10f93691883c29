"""Reports from test results produced elsewhere (``nightwheels report --report-log/--junit-xml``).

Projects that build with meson and run their tests in their own CI steps (numpy, scipy,
pandas) do not use ``nightwheels test``. They hand over a pytest ``--report-log`` file or
JUnit XML, and the interpreter of the environment the tests ran in (``--python``): its
installed distributions say which nightlies were tested. A distribution counts as a
nightly when it was installed from a file of the nightly index (PEP 610
``direct_url.json``), or when its version is a dev release that the nightly index lists
(an install from the index leaves no ``direct_url.json``; for a version string reused
by several builds, the newest such build is assumed and the report says so).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from nightwheels.errors import IndexUnavailable, ProjectConfigError
from nightwheels.nightly_testing.environment import Installed, installed, probe
from nightwheels.nightly_testing.index import IndexFile, SimpleIndex
from nightwheels.nightly_testing.pytest_log import PytestRun, parse_report_log
from nightwheels.nightly_testing.results import EXIT_CODES, Counts, Failure, Nightly, Report
from nightwheels.nightly_testing.selection import Target

__all__ = ["parse_junit", "report_from_results"]

MAX_RESULTS_BYTES = 256 * 1024 * 1024
MESSAGE_LIMIT = 500
DETAILS_LIMIT = 4000


def _read_bounded(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ProjectConfigError(f"{what} {path} does not exist") from None
    if size > MAX_RESULTS_BYTES:
        raise ProjectConfigError(f"{what} {path} is larger than {MAX_RESULTS_BYTES >> 20} MiB")
    return path.read_bytes()


def _nodeid(classname: str, name: str, file: str | None) -> str:
    """pytest's JUnit ``classname`` (``tests.test_x.TestY``) back to a node id."""
    if not classname:
        return name.replace(".", "/") + ".py" if name and "/" not in name else name
    parts = classname.split(".")
    classes: list[str] = []
    while len(parts) > 1 and parts[-1][:1].isupper():
        classes.insert(0, parts.pop())
    module = file or "/".join(parts) + ".py"
    return "::".join([module, *classes, name])


def parse_junit(data: bytes) -> tuple[Counts, list[Failure]]:
    """Counts and failures from JUnit XML (pytest's ``--junit-xml`` and compatible tools)."""
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise ProjectConfigError("the JUnit XML file declares a DTD or entities: refused")
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD or entity passed the check above
    except ET.ParseError as exc:
        raise ProjectConfigError(f"not valid JUnit XML: {exc}") from None
    counts = Counts()
    failures: list[Failure] = []
    for case in root.iter("testcase"):
        nodeid = _nodeid(case.get("classname", ""), case.get("name", "?"), case.get("file"))
        counts.duration += float(case.get("time") or 0)
        failed = case.find("failure")
        errored = case.find("error")
        skipped = case.find("skipped")
        problem = failed if failed is not None else errored
        if problem is not None:
            text = (problem.text or "").strip()
            lines = text.splitlines()
            message = problem.get("message") or (lines[-1] if lines else "no message")
            collect = errored is not None and "collection failure" in (errored.get("message") or "")
            when = "call" if failed is not None else ("collect" if collect else "setup")
            if failed is not None:
                counts.failed += 1
            else:
                counts.errors += 1
            failures.append(
                Failure(
                    nodeid=nodeid,
                    when=when,
                    message=message.strip()[:MESSAGE_LIMIT],
                    details=text[-DETAILS_LIMIT:],
                )
            )
        elif skipped is not None:
            if skipped.get("type") == "pytest.xfail":
                counts.xfailed += 1
            else:
                counts.skipped += 1
        else:
            counts.passed += 1
    counts.duration = round(counts.duration, 3)
    return counts, failures


def _filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _nightlies(
    found: dict[NormalizedName, Installed], index: SimpleIndex, target: Target
) -> tuple[list[Nightly], list[str]]:
    """The installed distributions that are nightlies of ``index``, and notes."""
    nightlies: list[Nightly] = []
    notes: list[str] = []
    listed = index.project_names()
    for name, dist in sorted(found.items()):
        if name not in listed:
            continue
        try:
            version = Version(dist.version)
        except InvalidVersion:
            continue
        if dist.url is None and not version.is_devrelease:
            continue
        files = index.files(name) or []
        pick: IndexFile | None = None
        if dist.url is not None:
            pick = next((f for f in files if f.filename == _filename(dist.url)), None)
        else:
            same = [
                f
                for f in files
                if f.is_wheel and f.version == version and f.tags & set(target.tags)
            ]
            if same:
                pick = max(same, key=lambda f: f.upload_time or datetime.min.replace(tzinfo=UTC))
                if len(same) > 1:
                    notes.append(
                        f"{name} {version}: {len(same)} builds share this version; "
                        "the newest is assumed"
                    )
        if pick is None:
            continue
        nightlies.append(
            Nightly(
                name=name,
                version=str(pick.version),
                filename=pick.filename,
                url=pick.url,
                sha256=pick.sha256,
                upload_time=pick.upload_time,
            )
        )
    return nightlies, notes


def report_from_results(
    *,
    project: str,
    report_log: Path | None,
    junit_xml: Path | None,
    python: str | None,
    index_url: str | None,
    run_url: str | None = None,
    job_url: str | None = None,
    commit: str | None = None,
    workdir: Path,
) -> Report:
    """A report like ``nightwheels test``'s, from result files and the tested environment."""
    if (report_log is None) == (junit_xml is None):
        raise ProjectConfigError("give one of --report-log and --junit-xml")
    error = None
    if report_log is not None:
        lines = _read_bounded(report_log, "report log").decode("utf-8", "replace").splitlines()
        counts, failures, status = parse_report_log(lines)
        if status is None:
            status = 1 if failures else (0 if counts.total else 5)
        run = PytestRun(status, counts, failures, failed_ids={f.nodeid for f in failures})
        outcome = run.outcome
        if outcome == "could-not-run":
            meaning = "no test ran" if not counts.total else "stopped"
            error = f"pytest exit {status} ({meaning}) according to {report_log.name}"
        source = f"pytest report log {report_log.name}"
    else:
        assert junit_xml is not None
        counts, failures = parse_junit(_read_bounded(junit_xml, "JUnit XML file"))
        outcome = "failed" if failures else ("passed" if counts.total else "could-not-run")
        if outcome == "could-not-run":
            error = f"{junit_xml.name} lists no test"
        source = f"JUnit XML {junit_xml.name}"
    nightlies: list[Nightly] = []
    environment: dict[str, str] = {}
    notes: list[str] = []
    python_version = platform = "unknown"
    if python is not None:
        interpreter = Path(python)
        if not interpreter.exists():
            raise ProjectConfigError(f"--python {python}: no such interpreter")
        target = probe(interpreter, workdir)
        python_version, platform = target.python_version, target.platform_tag
        found = installed(interpreter)
        environment = {name: info.version for name, info in sorted(found.items())}
        if index_url is not None:
            try:
                index = SimpleIndex(index_url)
            except IndexUnavailable as exc:
                raise ProjectConfigError(exc.message) from None
            try:
                nightlies, notes = _nightlies(found, index, target)
            finally:
                index.close()
    return Report(
        project=project,
        created_at=datetime.now(UTC),
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=EXIT_CODES[outcome],
        index_url=index_url or "unknown",
        stable_index_url="unknown",
        python=python_version,
        platform=platform,
        nightlies=nightlies,
        environment=environment,
        counts=counts,
        failures=failures,
        step="tests" if outcome == "could-not-run" else None,
        error=error,
        notes=notes,
        run_url=run_url,
        job_url=job_url,
        commit=commit,
        source=source,
    )
