"""Markdown for people: the tracking issue's title and body, comments, ``--markdown``. Pure.

GitHub refuses issue bodies and comments over 65,536 characters. Parametrised variants
of one test that fail with the same message are merged into one line first; if the text
is still too long, the list is cut and says how many failures it leaves out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nightwheels.nightly_testing.known_bad import KnownRegression
from nightwheels.nightly_testing.results import (
    STEP_NAMES,
    Build,
    CulpritBuilds,
    Failure,
    Report,
)

GITHUB_LIMIT = 65_536
MAX_PARAMS_SHOWN = 6
_PARAM = re.compile(r"^(?P<base>[^\[]+)\[(?P<param>.*)\]$")


def marker(key: str) -> str:
    """The hidden line that identifies one tracking issue (one per ``key``)."""
    safe = re.sub(r"[^A-Za-z0-9_.:/-]", "-", key)[:100] or "default"
    return f"<!-- nightwheels-tracking-issue: {safe} -->"


_STATE = re.compile(r"<!-- nightwheels-state: ([0-9a-f]{16}) -->")


def state(report: Report) -> str:
    """A digest of what a comment is worth: the outcome, the failing tests, the culprit."""
    parts = [report.outcome, report.step or "", culprit_text(report) or ""]
    parts += sorted({f.nodeid for f in report.failures})
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def read_state(body: str) -> str | None:
    match = _STATE.search(body)
    return match.group(1) if match else None


def _code(text: str) -> str:
    text = text.replace("\n", " ").replace("\r", " ")
    ticks = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


_ZWSP = "\u200b"


def _plain(text: str) -> str:
    """One line of untrusted text (a test message) that cannot open markdown structures,
    mention anyone (``@name``) or become a link (bare ``http://`` and ``www.``)."""
    text = " ".join(text.split())
    text = re.sub(r"([\\`*_{}\[\]<>#|!~])", r"\\\1", text)
    text = text.replace("@", "@" + _ZWSP)
    text = re.sub(r"(?i)\b(https?|ftp)(?=:)", lambda m: m.group(1) + _ZWSP, text)
    return re.sub(r"(?i)\bwww\.", "www" + _ZWSP + ".", text)


def _fenced(text: str) -> list[str]:
    """Untrusted text as a code block whose fence its content cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _when(build: Build) -> str:
    return build.upload_time.strftime("%Y-%m-%d %H:%M:%S UTC") if build.upload_time else "unknown"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def build_label(build: Build) -> str:
    """A build told apart from others of the same version: upload second and sha256."""
    sha = f", sha256 {build.sha256[:12]}" if build.sha256 else ""
    return f"{build.version} (uploaded {_when(build)}{sha})"


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
    """``numpy 2.3.0.dev3`` (with its first bad build), per regression, joined by "and"."""
    b = report.bisect
    if b is None or not b.culprits:
        return None
    if not b.regressions:
        first = next((c.first_bad for c in b.builds if c.first_bad), None)
        build = f" {first.version}" if first and len(b.culprits) == 1 else ""
        return " + ".join(b.culprits) + build
    parts = []
    for r in b.regressions:
        first = r.builds[0].first_bad if len(r.culprits) == 1 and r.builds else None
        part = " + ".join(r.culprits) + (f" {first.version}" if first else "")
        if part not in parts:
            parts.append(part)
    return " and ".join(parts)


def title(report: Report) -> str:
    culprit = culprit_text(report)
    if report.outcome == "install-error":
        return f"Nightly tests of {report.project}: the nightlies could not be installed"
    if report.outcome == "passed":
        return f"Nightly tests of {report.project} pass"
    if report.outcome == "could-not-run":
        if culprit:
            return f"Nightly tests of {report.project} cannot run with {culprit}"
        step = STEP_NAMES.get(report.step or "", "")
        return f"Nightly tests of {report.project} could not run" + (f" ({step})" if step else "")
    if culprit:
        return f"Nightly tests of {report.project} fail with {culprit}"
    count = report.counts.failed + report.counts.errors
    return f"Nightly tests of {report.project} fail ({count} failing)"


def _header(report: Report) -> list[str]:
    state = {
        "passed": "**pass**",
        "failed": "**fail**",
        "could-not-run": "**could not run**",
        "install-error": "**could not be installed**",
    }[report.outcome]
    run = ""
    if report.job_url:
        run = f" in [this job]({report.job_url})"
        if report.run_url:
            run += f" of [this run]({report.run_url})"
    elif report.run_url:
        run = f" in [this run]({report.run_url})"
    commit = f" at `{report.commit[:12]}`" if report.commit else ""
    lines = [
        f"The tests of `{report.project}`{commit} {state} with nightly builds of its "
        f"dependencies ({report.created_at:%Y-%m-%d %H:%M UTC}{run}).",
        "",
        f"Python {report.python} on `{report.platform}`; nightlies from {report.index_url}",
    ]
    if report.source != "nightwheels test":
        lines += ["", f"Results read from the {_plain(report.source)}."]
    lines += [f"- note: {_plain(note)}" for note in report.notes]
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
            f"across packages, {b.date_runs} across builds, {b.confirm_runs} of the full "
            "suite confirming the last good and first bad builds)."
        )
        regressions = b.regressions or []
        for i, r in enumerate(regressions, 1):
            if len(regressions) > 1:
                shown = ", ".join(_code(t) for t in r.tests[:5])
                more = f" and {len(r.tests) - 5} more" if len(r.tests) > 5 else ""
                lines += ["", f"Regression {i}: **{' + '.join(r.culprits)}** breaks {shown}{more}"]
            lines += _culprit_builds(r.builds)
        if not regressions:
            lines += _culprit_builds(b.builds)
    for note in b.notes:
        lines.append(f"- note: {_plain(note)}")
    return lines


def _culprit_builds(builds: Sequence[CulpritBuilds]) -> list[str]:
    lines = []
    for c in builds:
        lines.append("")
        if c.first_bad:
            lines.append(f"- {c.name}: first bad build {_build_line(c.first_bad)}")
        if c.last_good:
            lines.append(f"- {c.name}: last good build {_build_line(c.last_good)}")
        if c.note:
            lines.append(f"- {c.name}: {_plain(c.note)}")
    return lines


_LINK = re.compile(r"^https?://[^\s<>`]{1,490}$")


def _known(known: Sequence[KnownRegression]) -> list[str]:
    """Culprit builds their upstream marked known bad (nightly_testing/known_bad.py). The
    link was checked by the index (http(s)); the reason is the upstream's text: plain."""
    lines = []
    for k in known:
        link = f"<{k.link}>" if k.link and _LINK.match(k.link) else "(no link given)"
        lines += [
            "",
            f"**known upstream regression: {link}**: {k.name} marks {_code(k.version)} "
            f"known bad: {_plain(k.reason)}",
        ]
    return lines


def render(
    report: Report,
    *,
    key: str | None = None,
    limit: int = GITHUB_LIMIT,
    known: Sequence[KnownRegression] = (),
) -> str:
    """The full report in markdown, at most ``limit`` characters."""
    head = [marker(key), f"<!-- nightwheels-state: {state(report)} -->"] if key is not None else []
    head += _header(report) + _nightlies(report) + _bisect(report) + _known(known)
    if report.outcome == "could-not-run":
        step = STEP_NAMES.get(report.step or "", report.step or "unknown")
        head += ["", "### Could not run", "", f"Stopped at: {step}.", ""]
        head += _fenced((report.error or "no message")[:20_000])
    if report.install_error:
        head += ["", "### Install error", "", *_fenced(report.install_error[:20_000])]
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
    link = report.job_url or report.run_url
    run = f" ([{'job' if report.job_url else 'run'}]({link}))" if link else ""
    when = f"{report.created_at:%Y-%m-%d %H:%M UTC}"
    if report.outcome == "passed":
        versions = ", ".join(f"{n.name} {n.version}" for n in report.nightlies) or "no nightlies"
        return (
            f"The nightly tests pass again on {when}{run} with {versions}: "
            f"{report.counts.passed} passed. Closing."
        )
    if report.outcome == "install-error":
        return f"Still broken on {when}{run}: the nightlies could not be installed."
    if report.outcome == "could-not-run":
        step = STEP_NAMES.get(report.step or "", "")
        return f"Still broken on {when}{run}: the tests could not run ({step})."
    c = report.counts
    lines = [
        f"The failures changed on {when}{run}: {c.failed} failed, "
        f"{_count(c.errors, 'error', 'errors')}."
    ]
    culprit = culprit_text(report)
    if culprit:
        lines.append(f"Culprit: **{culprit}**.")
    lines.append("The issue description shows the latest report.")
    return " ".join(lines)
