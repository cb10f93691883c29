"""The plain-text summary ``nightwheels test`` prints at the end (CI logs). Pure."""

from __future__ import annotations

from nightwheels.nightly_testing.markdown import build_label, group_failures
from nightwheels.nightly_testing.results import STEP_NAMES, Build, CulpritBuilds, Report

MAX_LINES = 60


def _when(build: Build) -> str:
    return build.upload_time.strftime("%Y-%m-%d %H:%M:%S UTC") if build.upload_time else "?"


def _builds(builds: list[CulpritBuilds]) -> list[str]:
    lines = []
    for c in builds:
        good = f"last good {build_label(c.last_good)}" if c.last_good else "last good unknown"
        bad = f"first bad {build_label(c.first_bad)}" if c.first_bad else ""
        lines.append(f"  {c.name}: {good}, {bad}" + (f"; {c.note}" if c.note else ""))
    return lines


def summary_lines(report: Report) -> list[str]:
    lines = [
        f"== nightwheels: {report.project} with nightlies ({report.python}, {report.platform})"
    ]
    if report.nightlies:
        width = max(len(n.name) for n in report.nightlies)
        vwidth = max(len(n.version) for n in report.nightlies)
        lines.append(f"  {'package':<{width}}  {'nightly':<{vwidth}}  {'stable':<10}  uploaded")
        for n in report.nightlies:
            lines.append(
                f"  {n.name:<{width}}  {n.version:<{vwidth}}  {n.stable_version or '-':<10}  "
                f"{_when(n)}  sha256:{(n.sha256 or '?')[:16]}"
            )
    elif report.outcome not in ("install-error", "could-not-run"):
        lines.append("  no nightlies: stable releases only")
    for m in report.missing:
        lines.append(f"  NO NIGHTLY for {m.name}: {m.reason}")
    if report.install_error:
        lines.append("could not install:")
        lines += ["  " + line for line in report.install_error.splitlines()]
    if report.outcome == "could-not-run":
        lines.append(f"could not run ({STEP_NAMES.get(report.step or '', report.step)}):")
        lines += ["  " + line for line in (report.error or "").splitlines()[-40:]]
    if report.outcome != "install-error" and report.step in (None, "tests"):
        c = report.counts
        lines.append(
            f"tests: {c.failed} failed, {c.errors} errors, {c.passed} passed, {c.skipped} skipped"
            f", {c.xfailed} xfailed, {c.xpassed} xpassed"
        )
    groups = group_failures(report.failures)
    for g in groups[:MAX_LINES]:
        label = "ERROR" if g.when != "call" else "FAILED"
        name = g.base + (f"[{len(g.params)} variants]" if len(g.params) > 1 else "")
        if len(g.params) == 1:
            name = f"{g.base}[{g.params[0]}]"
        lines.append(f"{label} {name} - {g.message}")
    if len(groups) > MAX_LINES:
        lines.append(f"... and {len(groups) - MAX_LINES} more")
    b = report.bisect
    if b is not None:
        if b.baseline != "passed":
            lines.append("bisect: the failing tests also fail with the stable releases")
        elif b.culprits:
            lines.append(f"bisect: culprit {' + '.join(b.culprits)} ({b.runs} runs)")
            if len(b.regressions) > 1:
                for i, r in enumerate(b.regressions, 1):
                    shown = ", ".join(r.tests[:3]) + (", ..." if len(r.tests) > 3 else "")
                    lines.append(f"  regression {i}: {' + '.join(r.culprits)} breaks {shown}")
                    lines += _builds(r.builds)
            else:
                lines += _builds(b.builds)
        else:
            lines.append("bisect: no culprit named")
        for note in b.notes:
            lines.append(f"  note: {note}")
    verdict = {
        "passed": "PASSED",
        "failed": "FAILED",
        "could-not-run": "COULD NOT RUN",
        "install-error": "COULD NOT INSTALL",
    }
    lines.append(f"result: {verdict[report.outcome]} (exit {report.exit_code})")
    return lines
