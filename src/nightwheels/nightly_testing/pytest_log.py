"""Running pytest with a report log (pytest-reportlog) and reading it back."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightwheels.nightly_testing.results import Counts, Failure

MESSAGE_LIMIT = 500
DETAILS_LIMIT = 4000


# pytest's exit statuses other than 0 (passed) and 1 (tests failed): it could not run.
NOT_RUN = {
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


@dataclass
class PytestRun:
    exit_status: int
    counts: Counts
    failures: list[Failure]
    output_tail: str = ""
    failed_ids: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` (which tests: ``failed_ids``) or ``could-not-run``.

        Exit 1 counts as failed only with a failing test or a test module that did not
        import: a plugin that fails to load also exits 1 or 3 and runs nothing.
        """
        if self.exit_status == 0:
            return "passed" if self.counts.total else "could-not-run"
        if self.exit_status == 1:
            return "failed" if self.failures else "could-not-run"
        if self.exit_status in NOT_RUN:
            return "could-not-run"
        return "failed"  # killed (a crash in a nightly's extension): the synthetic failure

    @property
    def error(self) -> str | None:
        """For a run that could not run: what pytest said."""
        if self.outcome != "could-not-run":
            return None
        meaning = NOT_RUN.get(self.exit_status, "no test ran")
        return f"pytest exit {self.exit_status} ({meaning}):\n{self.output_tail}".strip()

    @property
    def signature(self) -> str:
        """The same failure again, whatever the paths: outcome plus its first error line."""
        if self.outcome == "failed":
            return "failed"
        text = self.failures[0].message if self.failures else _first_error(self.output_tail)
        return f"{self.exit_status}:{_PATHS.sub('<path>', text)}"


_PATHS = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"():\\/]+)+")


def _first_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E ") or re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line):
            return line.removeprefix("E ").strip()
    return lines[-1] if lines else ""


def _longrepr_text(longrepr: Any) -> str:
    if longrepr is None:
        return ""
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, list | tuple):  # skip reports: (path, lineno, reason)
        return str(longrepr[-1]) if longrepr else ""
    if isinstance(longrepr, dict):
        parts: list[str] = []
        tb = longrepr.get("reprtraceback") or {}
        for entry in tb.get("reprentries", []) or []:
            data = entry.get("data") or {}
            lines = data.get("lines")
            if lines:
                parts.extend(lines)
            elif isinstance(data.get("longrepr"), str):
                parts.append(data["longrepr"])
        if not parts and isinstance(longrepr.get("longrepr"), str):
            parts.append(longrepr["longrepr"])
        crash = longrepr.get("reprcrash") or {}
        if not parts and crash.get("message"):
            parts.append(crash["message"])
        return "\n".join(parts)
    return str(longrepr)


def _short_message(longrepr: Any) -> str:
    if isinstance(longrepr, dict):
        crash = longrepr.get("reprcrash") or {}
        if crash.get("message"):
            return str(crash["message"]).strip().splitlines()[0][:MESSAGE_LIMIT]
    text = _longrepr_text(longrepr)
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return errors[-1][:MESSAGE_LIMIT]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "no message")[:MESSAGE_LIMIT]


def parse_report_log(lines: Iterable[str]) -> tuple[Counts, list[Failure], int | None]:
    """Counts, failures (including collection errors) and the session exit status."""
    counts = Counts()
    failures: list[Failure] = []
    exit_status: int | None = None
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        kind = entry.get("$report_type")
        if kind == "SessionFinish":
            exit_status = entry.get("exitstatus")
        elif kind == "CollectReport" and entry.get("outcome") == "failed":
            counts.errors += 1
            failures.append(
                Failure(
                    nodeid=entry.get("nodeid") or "<collection>",
                    when="collect",
                    message=_short_message(entry.get("longrepr")),
                    details=_longrepr_text(entry.get("longrepr"))[-DETAILS_LIMIT:],
                )
            )
        elif kind == "TestReport":
            when = entry.get("when")
            outcome = entry.get("outcome")
            counts.duration += float(entry.get("duration") or 0)
            was_xfail = "wasxfail" in entry
            if when == "call":
                if outcome == "passed":
                    if was_xfail:
                        counts.xpassed += 1
                    else:
                        counts.passed += 1
                elif outcome == "skipped":
                    if was_xfail:
                        counts.xfailed += 1
                    else:
                        counts.skipped += 1
            elif when == "setup" and outcome == "skipped":
                counts.skipped += 1
            if outcome == "failed":
                if when == "call":
                    counts.failed += 1
                else:
                    counts.errors += 1
                failures.append(
                    Failure(
                        nodeid=entry.get("nodeid", "?"),
                        when=when or "call",
                        message=_short_message(entry.get("longrepr")),
                        details=_longrepr_text(entry.get("longrepr"))[-DETAILS_LIMIT:],
                    )
                )
    counts.duration = round(counts.duration, 3)
    return counts, failures, exit_status


_CONFTEST = re.compile(r"ImportError while loading conftest '(?P<path>[^']+)'")


def conftest_failure(output: str, project_root: Path) -> Failure | None:
    """A conftest.py that fails to import stops pytest before any report is logged."""
    match = _CONFTEST.search(output)
    if match is None:
        return None
    path = Path(match["path"])
    try:
        nodeid = path.relative_to(project_root).as_posix()
    except ValueError:
        nodeid = path.as_posix()
    return Failure(
        nodeid=nodeid,
        when="collect",
        message=_short_message(output[match.start() :]),
        details=output[match.start() :][-DETAILS_LIMIT:],
    )


def run_pytest(
    venv_bin: Path,
    project_root: Path,
    args: Sequence[str],
    log_path: Path,
    env: Mapping[str, str],
    timeout: float | None = None,
) -> PytestRun:
    """Run pytest from the environment in the project directory, with ``--report-log``."""
    log_path.unlink(missing_ok=True)
    command = [str(venv_bin / "python"), "-m", "pytest", f"--report-log={log_path}", *args]
    try:
        result = subprocess.run(
            command,
            cwd=project_root,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        status = result.returncode
        output = (result.stdout + result.stderr).strip()
    except subprocess.TimeoutExpired:
        status = 2
        output = ""
        timed_out = True
    else:
        timed_out = False
    lines = log_path.read_text(encoding="utf-8").splitlines() if log_path.exists() else []
    counts, failures, logged_status = parse_report_log(lines)
    if logged_status is not None:
        status = logged_status
    if status not in (0, 1, *NOT_RUN) and not timed_out:
        counts.errors += 1
        failures.append(
            Failure(
                nodeid="(pytest)",
                when="call",
                message=f"pytest ended with exit status {status} (killed or crashed)",
                details=output[-DETAILS_LIMIT:],
            )
        )
    if timed_out:
        status = 1
        counts.errors += 1
        failures.append(
            Failure(nodeid="(pytest)", when="call", message=f"did not finish in {timeout} s")
        )
    if not failures:
        broken = conftest_failure(output, project_root)
        if broken is not None:  # pytest calls this a usage error (4); a nightly may cause it
            counts.errors += 1
            failures.append(broken)
    tail = "\n".join(output.splitlines()[-30:]) if isinstance(output, str) else ""
    return PytestRun(
        exit_status=status,
        counts=counts,
        failures=failures,
        output_tail=tail,
        failed_ids={f.nodeid for f in failures},
    )
