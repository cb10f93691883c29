"""Retention: which live files a prune removes, and why. Pure rules, no I/O.

A plan is made per project from its live files in every label. Each label is a view of its
own (its own simple pages), so the version and tag rules apply per label; the share guard
counts the project's files in all labels. For each label:

1. pinned files, and every file of an exempt project, are kept;
2. versions are ranked by their latest upload, newest first (nightly version strings are not
   comparable across projects, upload times are); a version is removed when it is not among
   the newest ``keep`` or when its latest upload is older than ``days``. The newest version
   is never removed;
3. per file: a file of a kept version is removed when it was uploaded more than ``days``
   before its version's latest upload (a wheel tag the project stopped building, e.g. an old
   Python, while the version string keeps being re-uploaded for the other tags);
4. tag floor: every wheel tag (interpreter-abi-platform; ``sdist`` for source
   distributions) covered by a live file keeps its newest file, unless that file is older
   than ``tag_days``: the longer window after which a tag counts as dropped;
5. share guard: unless forced, a project loses at most ``max_share`` of its files; beyond
   that, the project keeps everything and the plan says why.

Whatever the rules cannot interpret (a filename that does not parse, a row whose version or
project does not match its filename, a naive timestamp, an invalid policy) raises
:class:`PruneAborted` for the whole plan, before anything is removed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from packaging.version import InvalidVersion, Version

from nightwheels.core.filenames import check_safe, parse_filename
from nightwheels.errors import NightwheelsError, PruneAborted

SDIST_TAG = "sdist"


@dataclass(frozen=True)
class FileRecord:
    """A live file as the policy sees it."""

    id: int
    filename: str
    version: str  # normalised PEP 440 string, as stored
    uploaded_at: datetime
    label: str = "main"
    pinned: bool = False
    size: int = 0


@dataclass(frozen=True)
class Policy:
    keep: int = 5
    days: int = 30
    tag_days: int = 90
    max_share: float = 0.5
    exempt: bool = False

    def problem(self) -> str | None:
        if self.keep < 1:
            return f"keep must be at least 1 (is {self.keep})"
        if self.days < 1:
            return f"days must be at least 1 (is {self.days})"
        if self.tag_days < self.days:
            return (
                f"the tag window ({self.tag_days} days) must not be shorter than days ({self.days})"
            )
        if not 0 < self.max_share <= 1:
            return f"max_share must be in (0, 1] (is {self.max_share})"
        return None


@dataclass(frozen=True)
class Decision:
    file: FileRecord
    remove: bool
    reason: str


@dataclass(frozen=True)
class ProjectPlan:
    project: str
    decisions: tuple[Decision, ...]
    total: int  # live files of the project, all labels
    refused: str | None = None  # why the share guard kept everything
    version: int | None = None  # ProjectInput.version

    @property
    def proposed(self) -> list[Decision]:
        """What the rules would remove, before the share guard."""
        return [d for d in self.decisions if d.remove]

    @property
    def removals(self) -> list[Decision]:
        """What this plan removes."""
        return [] if self.refused else self.proposed


@dataclass(frozen=True)
class ProjectInput:
    name: str  # normalised
    policy: Policy
    files: tuple[FileRecord, ...]
    # What the caller knows the project's state by (its serial): the same version means
    # the same files and policy, hence the same plan.
    version: int | None = None


@dataclass(frozen=True)
class Plan:
    now: datetime
    projects: tuple[ProjectPlan, ...]
    cache: ParseCache = field(default_factory=dict, repr=False, compare=False)

    @property
    def removals(self) -> list[tuple[str, Decision]]:
        return [(p.project, d) for p in self.projects for d in p.removals]

    @property
    def refused(self) -> list[ProjectPlan]:
        return [p for p in self.projects if p.refused]


@dataclass(frozen=True)
class _Parsed:
    record: FileRecord
    tags: frozenset[str]


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 10 else f"{days:.1f} days"


@lru_cache(maxsize=65536)
def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


# Parsed filenames (normalised name, version, tags), shared by the plan and its re-checks.
ParseCache = dict[str, tuple[str, str, frozenset[str]]]


def _wheel_head(head: str) -> tuple[str, str]:
    """Name and version of ``<name>-<version>[-<build>]``, by the full parser.

    Without a build tag, the parser checks the name and the version each on its own, so
    each is parsed once: a project's name once for all its versions, a version string
    (``1.0.dev20261207``) once for every project that uses it."""
    name, dash, version = head.partition("-")
    if dash and "-" not in version:
        return _wheel_name(name), _wheel_version(version)
    dist = parse_filename(f"{head}-py3-none-any.whl")
    return dist.name, str(dist.version)


@lru_cache(maxsize=65536)
def _wheel_name(part: str) -> str:
    return parse_filename(f"{part}-0-py3-none-any.whl").name


@lru_cache(maxsize=65536)
def _wheel_version(part: str) -> str:
    return str(parse_filename(f"x-{part}-py3-none-any.whl").version)


@lru_cache(maxsize=4096)
def _wheel_tags(tag: str) -> frozenset[str]:
    return frozenset(str(t) for t in parse_filename(f"x-0-{tag}.whl").tags)


def _parse_filename(filename: str, cache: ParseCache) -> tuple[str, str, frozenset[str]]:
    """(normalised name, version, tags) of a filename, as ``parse_filename`` finds them.

    A wheel filename is ``<head>-<python>-<abi>-<platform>.whl`` and the parser checks each
    part on its own, so the parts are parsed once each (a version's files share the head,
    the whole index shares a few dozen tags, a project's versions share its name).
    Anything unusual goes through the full parser, which also words the error.
    """
    hit = cache.get(filename)
    if hit is not None:
        return hit
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    try:
        if len(parts) not in (5, 6):
            raise ValueError
        check_safe(filename)
        name, version = _wheel_head("-".join(parts[:-3]))
        tags = _wheel_tags("-".join(parts[-3:]))
    except (NightwheelsError, ValueError):
        dist = parse_filename(filename)  # raises with the right message, or parses an sdist
        name, version = dist.name, str(dist.version)
        tags = frozenset(str(t) for t in dist.tags) if dist.tags else frozenset({SDIST_TAG})
    hit = cache[filename] = (name, version, tags)
    return hit


def _parse(project: str, record: FileRecord, cache: ParseCache) -> _Parsed:
    try:
        name, version, tags = _parse_filename(record.filename, cache)
    except NightwheelsError as exc:
        where = f"project {project!r}, file {record.filename!r} (id {record.id})"
        raise PruneAborted(f"{where}: {exc.message}; nothing was removed") from None
    if name == project and version == record.version and record.uploaded_at.tzinfo is not None:
        return _Parsed(record, tags)  # the usual case, without wording any message
    where = f"project {project!r}, file {record.filename!r} (id {record.id})"
    if name != project:
        raise PruneAborted(f"{where}: the filename names project {name!r}; nothing was removed")
    if version != record.version:
        raise PruneAborted(
            f"{where}: the row says version {record.version!r} but the filename says "
            f"{version}; nothing was removed"
        )
    if record.uploaded_at.tzinfo is None:
        raise PruneAborted(f"{where}: upload time has no time zone; nothing was removed")
    return _Parsed(record, tags)


def _plan_label(files: list[_Parsed], policy: Policy, now: datetime) -> dict[int, Decision]:
    by_version: dict[str, list[_Parsed]] = defaultdict(list)
    for f in files:
        by_version[f.record.version].append(f)
    latest = {v: max(f.record.uploaded_at for f in fs) for v, fs in by_version.items()}
    order = sorted(by_version, key=lambda v: (latest[v], _version_key(v)), reverse=True)
    stale_after = timedelta(days=policy.days)

    decisions: dict[int, Decision] = {}
    for rank, version in enumerate(order):
        version_age = now - latest[version]
        for f in by_version[version]:
            r = f.record
            behind = latest[version] - r.uploaded_at
            if r.pinned:
                decisions[r.id] = Decision(r, False, "pinned")
            elif rank >= policy.keep:
                decisions[r.id] = Decision(
                    r,
                    True,
                    f"version {version} is not among the newest {policy.keep} "
                    f"(it is number {rank + 1} by upload time)",
                )
            elif rank > 0 and version_age > stale_after:
                decisions[r.id] = Decision(
                    r,
                    True,
                    f"version {version} was last uploaded {_days(version_age)} ago "
                    f"(limit {policy.days} days)",
                )
            elif behind > stale_after:
                decisions[r.id] = Decision(
                    r,
                    True,
                    f"file is {_days(behind)} older than the latest upload of version "
                    f"{version} (limit {policy.days} days): its tag is no longer built",
                )
            elif rank == 0:
                decisions[r.id] = Decision(r, False, "newest version")
            else:
                decisions[r.id] = Decision(
                    r, False, f"among the newest {policy.keep} versions, within {policy.days} days"
                )

    # Tag floor: a tag a live file covers keeps its newest file, within the tag window.
    tag_window = timedelta(days=policy.tag_days)
    covered: set[str] = set()
    for f in files:
        if not decisions[f.record.id].remove:
            covered |= f.tags
    aged_out: dict[int, list[str]] = defaultdict(list)
    for tag in sorted({t for f in files for t in f.tags}):
        if tag in covered:
            continue
        newest = max(
            (f for f in files if tag in f.tags),
            key=lambda f: (f.record.uploaded_at, f.record.id),
        )
        r = newest.record
        if now - r.uploaded_at > tag_window:
            aged_out[r.id].append(tag)
            continue
        decisions[r.id] = Decision(
            r,
            False,
            f"last file of tag {tag}, kept up to {policy.tag_days} days "
            f"(otherwise: {decisions[r.id].reason})",
        )
        covered |= newest.tags
    for file_id, tags in aged_out.items():
        old = decisions[file_id]
        if old.remove:
            age = now - old.file.uploaded_at
            decisions[file_id] = Decision(
                old.file,
                True,
                f"{old.reason}; it is the last file of tag {', '.join(tags)}, built "
                f"{_days(age)} ago (beyond the {policy.tag_days}-day tag window)",
            )
    return decisions


def plan_project(
    project: ProjectInput,
    now: datetime,
    *,
    force: bool = False,
    cache: ParseCache | None = None,
) -> ProjectPlan:
    """Decide the fate of every live file of one project."""
    cache = {} if cache is None else cache
    if now.tzinfo is None:
        raise PruneAborted("the prune time has no time zone; nothing was removed")
    problem = project.policy.problem()
    if problem:
        raise PruneAborted(
            f"project {project.name!r}: invalid retention policy: {problem}; nothing was removed"
        )
    seen: set[int] = set()
    for r in project.files:
        if r.id in seen:
            raise PruneAborted(
                f"project {project.name!r}: file id {r.id} appears twice; nothing was removed"
            )
        seen.add(r.id)
    parsed = [_parse(project.name, r, cache) for r in project.files]
    total = len(parsed)
    if project.policy.exempt:
        decisions = tuple(
            Decision(p.record, False, "project is exempt from retention") for p in parsed
        )
        return ProjectPlan(project.name, decisions, total, version=project.version)

    by_label: dict[str, list[_Parsed]] = defaultdict(list)
    for p in parsed:
        by_label[p.record.label].append(p)
    merged: dict[int, Decision] = {}
    for label in sorted(by_label):
        merged.update(_plan_label(by_label[label], project.policy, now))
    decisions = tuple(merged[p.record.id] for p in parsed)
    _check_invariants(project.name, by_label, merged)

    removing = sum(1 for d in decisions if d.remove)
    refused = None
    if not force and total and removing / total > project.policy.max_share:
        refused = (
            f"would remove {removing} of {total} files ({removing / total:.0%}), more than the "
            f"{project.policy.max_share:.0%} allowed without --force"
        )
    return ProjectPlan(project.name, decisions, total, refused, project.version)


def _newest_version(files: list[_Parsed]) -> str:
    latest: dict[str, datetime] = {}
    for f in files:
        r = f.record
        if r.version not in latest or r.uploaded_at > latest[r.version]:
            latest[r.version] = r.uploaded_at
    return max(latest, key=lambda v: (latest[v], _version_key(v)))


def _check_invariants(
    project: str, by_label: dict[str, list[_Parsed]], decisions: dict[int, Decision]
) -> None:
    """A last guard against a rule bug: every label keeps a file of its newest version."""
    for label, files in by_label.items():
        newest = _newest_version(files)
        if all(decisions[f.record.id].remove for f in files if f.record.version == newest):
            raise PruneAborted(
                f"project {project!r}, label {label!r}: the plan would remove the newest "
                f"version {newest}; nothing was removed"
            )


def make_plan(projects: Iterable[ProjectInput], now: datetime, *, force: bool = False) -> Plan:
    """Plan every project; any error aborts the whole plan."""
    cache: ParseCache = {}
    return Plan(now, tuple(plan_project(p, now, force=force, cache=cache) for p in projects), cache)
