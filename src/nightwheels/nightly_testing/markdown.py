"""Markdown for people: the tracking issue's title and body, comments, ``--markdown``. Pure.

GitHub refuses issue bodies and comments over 65,536 characters. Parametrised variants
of one test that fail with the same message are merged into one line first; if the text
is still too long, the list is cut and says how many failures it leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nightwheels.nightly_testing.results import Build, Failure, Report

GITHUB_LIMIT = 65_536
MAX_PARAMS_SHOWN = 6
_PARAM = re.compile(r"^(?P<base>[^\[]+)\[(?P<param>.*)\]$")


def marker(key: str) -> str:
    """The hidden line that identifies one tracking issue (one per ``key``)."""
    safe = re.sub(r"[^A-Za-z0-9_.:/-]", "-", key)[:100] or "default"
    return f"<!-- nightwheels-tracking-issue: {safe} -->"


def _code(text: str) -> str:
    text = text.replace("\n", " ").replace("\r", " ")
    ticks = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _plain(text: str) -> str:
    """One line of untrusted text (a test message) that cannot open markdown structures."""
    text = " ".join(text.split())
    return re.sub(r"([\\`*_{}\[\]<>#|!])", r"\\\1", text)


def _when(build: Build) -> str:
    return build.upload_time.strftime("%Y-%m-%d %H:%M:%S UTC") if build.upload_time else "unknown"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _build_line(build: Build) -> str:
    sha = f", sha256 `{build.sha256[:16]}`" if build.sha256 else ""
    return f"`{build.version}` (`{build.filename}`, uploaded {_when(build)}{sha})"


@dataclass(frozen=True)
class FailureGroup:
    base: str
    params: tuple[str, ...]
    message: str
    when: str

    def render(self) -> str:
        kind = (
            "collection error"
            if self.when == "collect"
            else (f"error in {self.when}" if self.when in ("setup", "teardown") else "")
        )
        prefix = f"{kind}: " if kind else ""
        if not self.params:
            return f"- {_code(self.base)}: {prefix}{_plain(self.message)}"
        shown = ", ".join(self.params[:MAX_PARAMS_SHOWN])
        if len(self.params) > MAX_PARAMS_SHOWN:
            shown += ", ..."
        count = len(self.params)
        return (
            f"- {_code(self.base + '[' + shown + ']')} ({count} parametrisation"
            f"{'s' if count != 1 else ''}): {prefix}{_plain(self.message)}"
        )


def group_failures(failures: Sequence[Failure]) -> list[FailureGroup]:
    """Merge parametrised variants of one test that fail with the same message."""
    order: list[tuple[str, str, str]] = []
    params: dict[tuple[str, str, str], list[str]] = {}
    for f in failures:
        match = _PARAM.match(f.nodeid)
        base, param = (match["base"], match["param"]) if match else (f.nodeid, None)
        key = (base, f.message, f.when)
        if key not in params:
            order.append(key)
            params[key] = []
        if param is not None:
            params[key].append(param)
    groups = []
    for key in order:
        base, message, when = key
        if not params[key]:
            groups.append(FailureGroup(base, (), message, when))
        else:
            groups.append(FailureGroup(base, tuple(params[key]), message, when))
    return groups


def culprit_text(report: Report) -> str | None:
    if report.bisect is None or not report.bisect.culprits:
        return None
    return " + ".join(report.bisect.culprits)


def title(report: Report) -> str:
    culprit = culprit_text(report)
    if report.outcome == "install-error":
        return f"Nightly tests of {report.project}: the nightlies could not be installed"
    if report.outcome == "passed":
        return f"Nightly tests of {report.project} pass"
    if culprit and report.bisect:
        first = next((b.first_bad for b in report.bisect.builds if b.first_bad), None)
        build = f" {first.version}" if first and len(report.bisect.culprits) == 1 else ""
        return f"Nightly tests of {report.project} fail with {culprit}{build}"
    count = report.counts.failed + report.counts.errors
    return f"Nightly tests of {report.project} fail ({count} failing)"


def _header(report: Report) -> list[str]:
    state = {
        "passed": "**pass**",
        "failed": "**fail**",
        "install-error": "**could not be installed**",
    }[report.outcome]
    run = f" in [this run]({report.run_url})" if report.run_url else ""
    commit = f" at `{report.commit[:12]}`" if report.commit else ""
    lines = [
        f"The tests of `{report.project}`{commit} {state} with nightly builds of its "
        f"dependencies ({report.created_at:%Y-%m-%d %H:%M UTC}{run}).",
        "",
        f"Python {report.python} on `{report.platform}`; nightlies from {report.index_url}",
    ]
    return lines


def _nightlies(report: Report) -> list[str]:
    if not report.nightlies and not report.missing:
        return []
    lines = ["", "### Nightlies", "", "| package | nightly | latest stable | uploaded | sha256 |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for n in report.nightlies:
        sha = f"`{n.sha256[:16]}`" if n.sha256 else "?"
        lines.append(
            f"| {n.name} | [`{n.version}`]({n.url}) | {n.stable_version or '-'} | "
            f"{_when(n)} | {sha} |"
        )
    for m in report.missing:
        lines.append(f"| {m.name} | **no nightly**: {_plain(m.reason)} | | | |")
    return lines


def _bisect(report: Report) -> list[str]:
    b = report.bisect
    if b is None:
        return []
    lines = ["", "### Culprit", ""]
    if b.baseline != "passed":
        lines.append(
            "The failing tests also fail with the stable releases: not a nightly regression."
        )
    elif not b.culprits:
        lines.append("Bisection did not find a culprit.")
    else:
        lines.append(
            f"**{culprit_text(report)}** (found in {b.runs} test runs: {b.package_runs} "
            f"across packages, {b.date_runs} across builds)."
        )
        for c in b.builds:
            lines.append("")
            if c.first_bad:
                lines.append(f"- {c.name}: first bad build {_build_line(c.first_bad)}")
            if c.last_good:
                lines.append(f"- {c.name}: last good build {_build_line(c.last_good)}")
            if c.note:
                lines.append(f"- {c.name}: {_plain(c.note)}")
    for note in b.notes:
        lines.append(f"- note: {_plain(note)}")
    return lines


def render(report: Report, *, key: str | None = None, limit: int = GITHUB_LIMIT) -> str:
    """The full report in markdown, at most ``limit`` characters."""
    head = [marker(key)] if key is not None else []
    head += _header(report) + _nightlies(report) + _bisect(report)
    if report.install_error:
        head += ["", "### Install error", "", "```", report.install_error[:20_000], "```"]
    items: list[str] = []
    if report.failures:
        c = report.counts
        head += [
            "",
            f"### Failing tests ({_count(c.failed, 'failed', 'failed')}, "
            f"{_count(c.errors, 'error', 'errors')}; {c.passed} passed)",
            "",
        ]
        items = [g.render() for g in group_failures(report.failures)]
    footer = ["", "<sub>Reported by nightwheels.</sub>", ""]
    return _fit(head, items, footer, limit)


def _fit(head: list[str], items: list[str], footer: list[str], limit: int) -> str:
    text_head = "\n".join(head)
    text_footer = "\n".join(footer)
    budget = limit - len(text_head) - len(text_footer) - 200
    kept: list[str] = []
    used = 0
    for i, item in enumerate(items):
        if len(item) > 2000:
            item = item[:2000] + "..."
        if used + len(item) + 1 > budget:
            kept.append(f"- ... and {len(items) - i} more failing tests not shown")
            break
        kept.append(item)
        used += len(item) + 1
    body = "\n".join([text_head, *kept, text_footer]) if kept else text_head + "\n" + text_footer
    if len(body) > limit:  # the head alone is too long (a huge install error)
        body = body[: limit - 40] + "\n\n... (cut to fit)\n"
    return body


def comment(report: Report, previous_title: str | None = None) -> str:
    """A short comment for a run that keeps failing, or that passes again."""
    run = f" ([run]({report.run_url}))" if report.run_url else ""
    when = f"{report.created_at:%Y-%m-%d %H:%M UTC}"
    if report.outcome == "passed":
        versions = ", ".join(f"{n.name} {n.version}" for n in report.nightlies) or "no nightlies"
        return (
            f"The nightly tests pass again on {when}{run} with {versions}: "
            f"{report.counts.passed} passed. Closing."
        )
    if report.outcome == "install-error":
        return f"Still broken on {when}{run}: the nightlies could not be installed."
    c = report.counts
    lines = [
        f"Still failing on {when}{run}: {c.failed} failed, {_count(c.errors, 'error', 'errors')}."
    ]
    culprit = culprit_text(report)
    if culprit:
        lines.append(f"Culprit: **{culprit}**.")
    lines.append("The issue description shows the latest report.")
    return " ".join(lines)
