"""Uploading a folder: check every file, send them in parallel, summarise."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nightwheels.core.names import DEFAULT_LABEL, validate_label
from nightwheels.errors import InvalidDistribution, Misconfigured, NightwheelsError
from nightwheels.upload import sessions
from nightwheels.upload.client import BATCH_BYTES, WHOLE_BODY, FileResult, RetryPolicy, Uploader
from nightwheels.upload.credentials import Credentials
from nightwheels.upload.files import LocalDist, Rejected, find_distributions, preflight
from nightwheels.upload.progress import Reporter
from nightwheels.upload.sessions import RemoteSession

OUTCOMES = ("uploaded", "replaced", "unchanged", "failed")
MIN_BATCH = 10  # fewer files than this per worker still go in one request


@dataclass
class Summary:
    server: str
    labels: list[str]
    results: list[FileResult] = field(default_factory=list)
    session: RemoteSession | None = None  # uploaded into this session
    published: bool = False  # ... and published it (--atomic)
    fatal: str | None = None  # why the run stopped, with the fix (a refused token, no server)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return sorted(
            (r for r in self.results if r.outcome == "failed"), key=lambda r: r.dist.filename
        )

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def warnings(self) -> list[str]:
        return list(dict.fromkeys(w for r in self.results for w in r.warnings))

    @property
    def projects(self) -> list[str]:
        names = {r.project or r.dist.name for r in self.results if r.outcome != "failed"}
        return sorted(names, key=str.lower)

    def index_url(self, label: str) -> str:
        if label == DEFAULT_LABEL:
            return f"{self.server}/simple/"
        return f"{self.server}/label/{label}/simple/"

    def line(self) -> str:
        counts = self.counts
        return ", ".join(f"{name} {counts.get(name, 0)}" for name in OUTCOMES)


def describe_rejected(rejected: list[Rejected]) -> str:
    lines = [f"  {r.path.name}: {r.reason}" for r in rejected]
    return (
        f"{len(rejected)} file{'s' if len(rejected) != 1 else ''} failed the check before "
        "upload; nothing was uploaded:\n" + "\n".join(lines)
    )


def prepare(folder: Path, *, sdist: bool = False) -> list[LocalDist]:
    """The checked distributions in ``folder``; refuse the lot if any file is broken.

    All or nothing: a nightly published without some of its wheels (or with one that
    installers refuse) is worse than yesterday's complete one.
    """
    good, bad = preflight(find_distributions(folder, sdist=sdist))
    if bad:
        raise InvalidDistribution(describe_rejected(bad))
    return good


def plan_requests(dists: list[LocalDist], batch: int, jobs: int) -> list[list[LocalDist]]:
    """The files of each request, largest first: a large file alone, small ones together.

    Many small files are spread over the workers (the server answers each batch as it is
    done, so the client keeps sending while the server records); a few go together
    (:data:`MIN_BATCH`: one request costs less than several, even in parallel). A batch
    holds at most ``batch`` files and :data:`BATCH_BYTES` of them.
    """
    ordered = sorted(dists, key=lambda d: (-d.size, d.filename))
    alone = [[d] for d in ordered if d.size > WHOLE_BODY or batch == 1]
    small = [d for d in ordered if d.size <= WHOLE_BODY and batch > 1]
    per_request = min(batch, max(MIN_BATCH, -(-len(small) // jobs)))
    groups: list[list[LocalDist]] = []
    current: list[LocalDist] = []
    size = 0
    for dist in small:
        if current and (len(current) == per_request or size + dist.size > BATCH_BYTES):
            groups.append(current)
            current, size = [], 0
        current.append(dist)
        size += dist.size
    if current:
        groups.append(current)
    return alone + groups


def upload_folder(
    folder: Path,
    credentials: Credentials,
    reporter: Reporter,
    *,
    labels: list[str] | None = None,
    sdist: bool = False,
    jobs: int = 8,
    batch: int = 50,
    policy: RetryPolicy | None = None,
    timeout: float = 60.0,
    session: str | None = None,
    atomic: bool = False,
) -> Summary:
    """Upload ``folder``; into the upload session ``session`` if given (listed once it is
    published), or, ``atomic``, into a session of its own published at the end: every
    file visible at once, or none."""
    labels = [validate_label(label) for label in (labels or [DEFAULT_LABEL])]
    if jobs < 1:
        raise Misconfigured("--jobs must be at least 1")
    if batch < 1:
        raise Misconfigured("--batch must be at least 1")
    dists = prepare(folder, sdist=sdist)
    requests = plan_requests(dists, batch, jobs)
    summary = Summary(server=credentials.server, labels=labels)
    legacy_path = "/legacy/"
    if session is not None or atomic:
        summary.session = _open_session(credentials, dists, labels, session, timeout)
        legacy_path = summary.session.legacy_path
    uploader = Uploader(
        credentials,
        labels if summary.session is None else [],
        policy=policy,
        timeout=timeout,
        on_retry=reporter.retrying,
        legacy_path=legacy_path,
    )
    reporter.start(len(dists), sum(d.size for d in dists))
    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="upload") as pool:
            futures = [pool.submit(uploader.upload_batch, files) for files in requests]
            pending = set(futures)
            while pending:
                try:
                    for future in as_completed(pending):
                        pending.discard(future)
                        for result in future.result():
                            summary.results.append(result)
                            if uploader.fatal is None:  # else one line says it all
                                reporter.done(result)
                except KeyboardInterrupt:
                    uploader.abort("interrupted")
    finally:
        reporter.stop()
        uploader.close()
    summary.fatal = uploader.fatal
    if atomic and summary.session is not None and summary.fatal is None:
        _finish_atomic(credentials, summary)
    return summary


def _open_session(
    credentials: Credentials,
    dists: list[LocalDist],
    labels: list[str],
    name: str | None,
    timeout: float,
) -> RemoteSession:
    projects = sorted({d.name for d in dists})
    if len(projects) != 1:
        raise Misconfigured(
            "an upload session publishes one project, and these files are for "
            + ", ".join(projects)
            + ": upload each project's files on their own"
        )
    if len(labels) != 1:
        raise Misconfigured("an upload session publishes to one label: give one --label")
    name = name or f"atomic-{uuid.uuid4().hex}"
    return sessions.open_session(credentials, projects[0], name, labels[0], timeout=timeout)


def _finish_atomic(credentials: Credentials, summary: Summary) -> None:
    """All uploaded: publish; anything failed: cancel, so nothing of it is ever listed."""
    assert summary.session is not None
    if summary.ok:
        summary.session = sessions.publish(credentials, summary.session.id)
        summary.published = True
        return
    with contextlib.suppress(NightwheelsError):  # unpublished, it expires on its own
        sessions.cancel(credentials, summary.session.id)
