"""``nightwheels test``: choose the nightlies, build the environment, verify it, run pytest,
and on failure find the culprit.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from nightwheels.core.names import is_valid_name
from nightwheels.errors import IndexUnavailable, InstallFailed, ProjectConfigError
from nightwheels.nightly_testing import bisect as bisection
from nightwheels.nightly_testing.buildstamp import BuildStamp
from nightwheels.nightly_testing.environment import (
    Installed,
    PendingVenv,
    Uv,
    bin_dir,
    current_target,
    find_uv,
    installed,
    probe,
    test_environment,
)
from nightwheels.nightly_testing.index import (
    IndexFile,
    SimpleIndex,
    default_history_template,
    latest_stable,
)
from nightwheels.nightly_testing.project import Project, read_project
from nightwheels.nightly_testing.pytest_log import PytestRun, run_pytest
from nightwheels.nightly_testing.results import (
    EXIT_CODES,
    EXIT_NO_NIGHTLIES,
    EXIT_USAGE,
    Bisection,
    Build,
    Counts,
    CulpritBuilds,
    MissingNightly,
    Nightly,
    Regression,
    Report,
)
from nightwheels.nightly_testing.selection import Missing, Target, choose
from nightwheels.nightly_testing.verify import verify_nightlies

TEST_TOOLS = ("pytest", "pytest-reportlog")
# Collection errors (an import that a nightly broke) are reported with the failures.
PYTEST_DEFAULTS = ("--continue-on-collection-errors",)
MAX_RERUN_IDS = 200
MAX_REGRESSIONS = 5
ONE_TICK = timedelta(microseconds=1)


@dataclass
class TestOptions:
    project_dir: Path
    index_url: str
    stable_index_url: str = "https://pypi.org/simple/"
    nightly: list[str] | None = None  # None: ask the index which dependencies have nightlies
    all_available: bool = False  # also transitive dependencies
    stable_only: bool = False
    extras: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    bisect: bool = False
    allow_missing: bool = False
    allow_none: bool = False  # --allow-no-nightlies: a run that finds none tests stable only
    python: str | None = None
    uv: str | None = None
    workdir: Path | None = None
    keep: bool = False
    history_url: str | None = None  # template with {when}
    max_builds: int = 30
    timeout: float | None = None


def ci_context(project_dir: Path) -> tuple[str | None, str | None]:
    """The CI run's URL (GitHub Actions variables) and the commit tested."""
    env = os.environ
    run_url = None
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        if env.get("GITHUB_RUN_ATTEMPT", "1") not in ("", "1"):
            run_url += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
    commit = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA")
    if not commit and shutil.which("git"):
        result = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        commit = result.stdout.strip() if result.returncode == 0 else None
    return run_url, commit or None


def _build(f: IndexFile) -> Build:
    return Build(
        version=str(f.version),
        filename=f.filename,
        url=f.url,
        sha256=f.sha256,
        upload_time=f.upload_time,
    )


class NightlyTester:
    """One invocation of ``nightwheels test``."""

    def __init__(
        self,
        options: TestOptions,
        log: Callable[[str], None] = print,
        first_env: PendingVenv | None = None,
    ) -> None:
        """``first_env``: the first environment, started early (``start_first_venv``)."""
        self.options = options
        self.log = log
        self.project: Project = read_project(options.project_dir)
        self.extras = list(dict.fromkeys(options.extras))
        self.groups = list(dict.fromkeys(options.groups))
        self.direct = self.project.requirements(self.extras, self.groups)  # checks both
        try:
            self.nightly_index = SimpleIndex(options.index_url)
            self.stable_index = SimpleIndex(options.stable_index_url)
        except IndexUnavailable as exc:
            raise ProjectConfigError(exc.message) from None
        self.history_template = options.history_url or default_history_template(
            self.nightly_index.url
        )
        uv_binary = find_uv(options.uv)
        self._own_workdir = options.workdir is None
        self._first_env = first_env
        if first_env is not None:
            base = first_env.workdir
        else:
            base = options.workdir or Path(tempfile.mkdtemp(prefix="nightwheels-test-"))
            base.mkdir(parents=True, exist_ok=True)
        self.workdir = base
        self.uv = Uv(uv_binary, self.stable_index.url, self.workdir)
        self.env_count = 0
        self.target: Target | None = None
        self.notes: list[str] = []
        self.project_version = self.project.version
        self.pytest_runs = 0
        self.phase_runs: dict[str, int] = {}
        self._trials: dict[object, Trial] = {}
        self._histories: dict[NormalizedName, tuple[list[IndexFile], str]] = {}
        self._stable_versions: dict[NormalizedName, Version | None] = {}
        self._built = False
        self._stamp = BuildStamp(self.project.root, self.uv.env.get("UV_CACHE_DIR"))
        self._ci_context: Future[tuple[str | None, str | None]] | None = None

    # --- environments -------------------------------------------------------------

    def _base_requirements(self) -> list[str]:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        lines = [f"{self.project.name}{extras} @ {self.project.root.as_uri()}"]
        for group in self.groups:
            lines += [str(r) for r in self.project.groups[canonicalize_name(group)]]
        lines += list(TEST_TOOLS)
        return lines

    def _new_env(self) -> Path:
        self.env_count += 1
        first, self._first_env = self._first_env, None
        if first is not None and self.env_count == 1:
            return first.wait()
        path = self.workdir / f"env-{self.env_count}"
        if path.exists():
            shutil.rmtree(path)
        return self.uv.create_venv(path, self.options.python or sys.executable)

    def _install(
        self, python: Path, nightlies: dict[NormalizedName, IndexFile]
    ) -> dict[NormalizedName, Installed]:
        lines = self._base_requirements()
        for name, f in sorted(nightlies.items()):
            fragment = f"#sha256={f.sha256}" if f.sha256 else ""
            lines.append(f"{name} @ {f.url}{fragment}")
        # A URL that names its content (nightwheels' /files/<sha256 prefix>/...) cannot
        # hold other bytes: only a reusable URL is re-validated in uv's cache.
        refresh = sorted(n for n, f in nightlies.items() if not _content_addressed(f))
        # The project is built from its sources when a file changed since nightwheels last
        # had uv build it (buildstamp); later environments take that build from uv's cache.
        rebuild = [] if self._built or self._stamp.current() else [self.project.name]
        started = time.time()
        self.uv.install(python, lines, refresh=refresh, rebuild=rebuild)
        if rebuild:
            self._stamp.record(started)
        self._built = True
        found = installed(python)
        problems = verify_nightlies(nightlies, found, self.nightly_index.url)
        if problems:
            raise InstallFailed(
                "the environment does not hold the chosen nightlies:\n- " + "\n- ".join(problems)
            )
        return found

    def _discard(self, python: Path) -> None:
        if not self.options.keep:
            shutil.rmtree(python.parent.parent, ignore_errors=True)

    def _run_tests(self, python: Path, args: list[str]) -> PytestRun:
        venv = python.parent.parent
        return run_pytest(
            bin_dir(venv),
            self.project.root,
            [*PYTEST_DEFAULTS, *args],
            venv / "report-log.jsonl",
            test_environment(venv),
            timeout=self.options.timeout,
        )

    # --- choosing the nightlies ---------------------------------------------------------

    def _lookup(
        self, target: Target, python: Callable[[], Path]
    ) -> tuple[list[NormalizedName], dict[NormalizedName, IndexFile], list[MissingNightly]]:
        """The dependencies wanted as nightlies, the nightly chosen for each, and the missing."""
        names = self._requested_names(target, python)
        chosen, missing = self._choose(names, target)
        return names, chosen, missing

    def _requested_names(self, target: Target, python: Callable[[], Path]) -> list[NormalizedName]:
        """``python`` gives the test environment's interpreter (waiting for it if need be)."""
        options = self.options
        own = canonicalize_name(self.project.name)
        if options.stable_only:
            return []
        if options.nightly is not None:
            names = []
            for raw in options.nightly:
                raw = raw.strip()
                if not raw:
                    continue
                if not is_valid_name(raw):
                    raise ProjectConfigError(f"--nightly: {raw!r} is not a valid project name")
                names.append(canonicalize_name(raw))
            if not names:
                raise ProjectConfigError("--nightly names no package")
            if own in names:
                raise ProjectConfigError(
                    f"--nightly names {self.project.name}, the project under test itself"
                )
            return sorted(set(names))
        available = self.nightly_index.project_names()
        if options.all_available:
            wanted = self.uv.compile_names(python(), self._base_requirements())
        else:
            if "dependencies" in self.project.dynamic:
                raise ProjectConfigError(
                    f"{self.project.name} declares its dependencies as dynamic: name the "
                    "nightlies with --nightly, or use --all-available"
                )
            env = {**target.markers, "extra": ""}
            wanted = {
                canonicalize_name(r.name)
                for r in self.direct
                if r.marker is None or r.marker.evaluate(env)
            }
        return sorted((wanted & available) - {own})

    def _choose(
        self, names: Iterable[NormalizedName], target: Target
    ) -> tuple[dict[NormalizedName, IndexFile], list[MissingNightly]]:
        chosen: dict[NormalizedName, IndexFile] = {}
        missing: list[MissingNightly] = []
        names = list(names)
        # Both indexes at once: each page is a round trip, and only the latest stable
        # version (for the report) is read from the stable one.
        with ThreadPoolExecutor(max_workers=8) as pool:
            nightly_pages = pool.map(self.nightly_index.files, names)
            stable = pool.map(lambda n: latest_stable(self.stable_index.files(n) or []), names)
            pages, stable = list(nightly_pages), list(stable)
        self._stable_versions = dict(zip(names, stable, strict=True))
        for name, files in zip(names, pages, strict=True):
            if files is None:
                missing.append(MissingNightly(name=name, reason="not on the nightly index"))
                continue
            pick = choose(files, target)
            if isinstance(pick, Missing):
                missing.append(MissingNightly(name=name, reason=pick.reason))
            else:
                chosen[name] = pick
        return chosen, missing

    # --- the run ------------------------------------------------------------------------

    def run(self) -> Report:
        # The run's URL and commit (``git rev-parse``) are found while the tests run.
        context = ThreadPoolExecutor(max_workers=1)
        self._ci_context = context.submit(ci_context, self.project.root)
        context.shutdown(wait=False)
        try:
            return self._run()
        finally:
            if self._first_env is not None:  # stopped before the first environment
                self._first_env.discard()
            self.nightly_index.close()
            self.stable_index.close()
            if self._own_workdir and not self.options.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _report(self, target: Target | None, **fields: object) -> Report:
        context = self._ci_context
        run_url, commit = context.result() if context else ci_context(self.project.root)
        outcome = str(fields["outcome"])
        fields.setdefault("exit_code", EXIT_CODES[outcome])
        return Report(
            project=self.project.name,
            project_version=self.project_version,
            created_at=datetime.now(UTC),
            index_url=self.nightly_index.url,
            stable_index_url=self.stable_index.url,
            python=target.python_version if target else "unknown",
            platform=target.platform_tag if target else "unknown",
            run_url=run_url,
            job_url=job_url(),
            commit=commit,
            **fields,  # type: ignore[arg-type]
        )

    def _run(self) -> Report:
        target: Target | None = None
        nightlies: list[Nightly] = []
        missing: list[MissingNightly] = []
        try:
            if self.options.python:
                python = self._new_env()
                target = self.target = probe(python, self.workdir)
                names, chosen, missing = self._lookup(target, lambda: python)
            else:
                # The venv of the interpreter running us has its tags: no need to ask it.
                # uv creates the environment while the index is read (both wait on I/O).
                target = self.target = current_target()
                with ThreadPoolExecutor(max_workers=1) as pool:
                    creating = pool.submit(self._new_env)
                    try:
                        names, chosen, missing = self._lookup(target, creating.result)
                    finally:
                        python = creating.result()  # its error first, as when sequential
            for name in sorted(chosen):
                stable = self._stable_versions.get(name)
                nightlies.append(
                    Nightly(
                        name=name,
                        stable_version=str(stable) if stable else None,
                        **dataclasses.asdict(_build(chosen[name])),
                    )
                )
            self._announce(target, nightlies, missing)
            if missing and not self.options.allow_missing:
                raise InstallFailed(
                    "no usable nightly for: "
                    + "; ".join(f"{m.name} ({m.reason})" for m in missing)
                    + " (pass --allow-missing to test these with their stable release)"
                )
            if not chosen and not self.options.stable_only and not self.options.allow_none:
                error = self._no_nightlies_error(names, missing)
                self.log(f"error: {error}")
                return self._report(
                    target,
                    outcome="could-not-run",
                    exit_code=EXIT_NO_NIGHTLIES,
                    step="nightlies",
                    error=error,
                    missing=missing,
                )
            found = self._install(python, chosen)
            environment = {name: info.version for name, info in sorted(found.items())}
            own = found.get(canonicalize_name(self.project.name))
            if self.project_version is None and own is not None:
                self.project_version = own.version  # a dynamic version (setuptools-scm)
        except InstallFailed as exc:
            self.log(f"error: {exc.message}")
            return self._report(
                target,
                outcome="install-error",
                step="install",
                nightlies=nightlies,
                missing=missing,
                install_error=exc.message,
            )
        run = self._run_tests(python, list(self.options.pytest_args))
        self._discard(python)
        self.pytest_runs += 1
        outcome = run.outcome
        self.log(f"tests: {counts_text(run.counts)}")
        if outcome == "could-not-run":
            self.log(f"the tests could not run (pytest exit {run.exit_status}): see below")
        bisect_result = None
        if outcome != "passed" and self.options.bisect and chosen:
            bisect_result = self._bisect(chosen, run)
        return self._report(
            target,
            outcome=outcome,
            step="tests" if outcome == "could-not-run" else None,
            error=run.error,
            nightlies=nightlies,
            missing=missing,
            environment=environment,
            counts=run.counts,
            failures=run.failures,
            bisect=bisect_result,
        )

    def _no_nightlies_error(
        self, names: list[NormalizedName], missing: list[MissingNightly]
    ) -> str:
        if missing:
            return (
                "no nightly could be used (" + ", ".join(m.name for m in missing) + "): "
                "nothing was tested against nightlies (pass --allow-no-nightlies to test "
                "the stable releases anyway)"
            )
        wanted = sorted(canonicalize_name(r.name) for r in self.direct)
        shown = ", ".join(dict.fromkeys(wanted)) or "none"
        return (
            f"{self.nightly_index.url} lists no nightly of the dependencies ({shown}): "
            "is the index URL right (an /as-of/ time before the first upload lists nothing)? "
            "Pass --allow-no-nightlies to test the stable releases anyway"
        )

    def _announce(
        self, target: Target, nightlies: list[Nightly], missing: list[MissingNightly]
    ) -> None:
        self.log(
            f"{self.project.name}: Python {target.python_version} on {target.platform_tag}; "
            f"nightlies from {self.nightly_index.url}"
        )
        if not nightlies and not missing:
            self.log("no nightlies: testing with the stable releases only")
        for n in nightlies:
            when = n.upload_time.strftime("%Y-%m-%d %H:%M:%S") if n.upload_time else "?"
            self.log(
                f"  nightly {n.name} {n.version} (stable {n.stable_version or '-'}), "
                f"uploaded {when}, sha256 {(n.sha256 or '?')[:12]}"
            )
        for m in missing:
            self.log(f"  NO NIGHTLY for {m.name}: {m.reason}")

    # --- bisection ----------------------------------------------------------------------
    #
    # A trial builds an environment with some nightlies (the rest stable) and asks whether
    # the *same* failure happens: one of the same failing tests fails, or pytest cannot
    # run with the same error. Anything else (passing, another failure, could not run,
    # could not install) does not reproduce it. Searches re-run only the failing tests;
    # the boundaries they find are confirmed with the full suite.

    def _rerun_args(self, symptom: Symptom, full: bool) -> list[str]:
        if self.options.pytest_args or full or symptom.signature is not None:
            return list(self.options.pytest_args)
        ids = set()
        for nodeid in symptom.ids:
            if nodeid.split("::", 1)[0].endswith("conftest.py"):
                nodeid = Path(nodeid.split("::", 1)[0]).parent.as_posix()  # its directory
            ids.add(nodeid)
        if len(ids) > MAX_RERUN_IDS:
            ids = {i.split("::", 1)[0] for i in ids}
        return sorted(ids)

    def _trial(
        self,
        nightlies: dict[NormalizedName, IndexFile],
        what: str,
        symptom: Symptom,
        *,
        full: bool = False,
        phase: str = "package",
    ) -> Trial:
        args = self._rerun_args(symptom, full)
        full = full or args == list(self.options.pytest_args)
        key = (tuple(sorted((n, f.sha256 or f.url) for n, f in nightlies.items())), full)
        cached = self._trials.get(key)
        if cached is not None and (cached.run is None or full):
            return cached.against(symptom)
        python = self._new_env()
        try:
            self._install(python, nightlies)
        except InstallFailed as exc:
            self.notes.append(f"{what}: could not install, counted as not failing ({exc.message})")
            self.log(f"  {what}: could not install")
            self._discard(python)
            trial = Trial(None, exc.message)
            self._trials[key] = trial
            return trial
        run = self._run_tests(python, args)
        self._discard(python)
        self.pytest_runs += 1
        self.phase_runs[phase] = self.phase_runs.get(phase, 0) + 1
        trial = Trial(run, None)
        if full:
            self._trials[key] = trial
        trial = trial.against(symptom)
        state = "fails" if trial.fails else ("passes" if run.passed else run.outcome)
        if run.outcome == "could-not-run" and not trial.fails:
            state = f"could not run (pytest exit {run.exit_status})"
        number = sum(self.phase_runs.values())
        self.log(f"  run {number}: {what}{' (full suite)' if full else ''}: {state}")
        return trial

    def _bisect(self, chosen: dict[NormalizedName, IndexFile], first: PytestRun) -> Bisection:
        names = sorted(chosen)
        symptom = Symptom.of(first)
        self.log(f"bisect: {len(names)} nightlies; the stable releases first (the full suite)")
        result = Bisection()
        base = self._trial({}, "no nightlies, all stable", symptom, full=True)
        result.package_runs = self.phase_runs.get("package", 0)
        if base.run is None:
            result.baseline = "install-error"
            result.notes = [
                "the stable releases could not be installed: no culprit can be named",
                *self.notes,
            ]
            return result
        if base.run.outcome != "passed":
            result.baseline = base.run.outcome  # type: ignore[assignment]
            result.notes = [self._baseline_note(base.run, symptom), *self.notes]
            return result
        remaining = symptom
        explained: set[str] = set()
        seen: dict[NormalizedName, IndexFile] = {}  # culprit -> first bad of its last regression
        for _ in range(MAX_REGRESSIONS):
            regression = self._one_regression(names, chosen, remaining, explained, seen)
            if regression is None:
                break
            result.regressions.append(regression)
            if remaining.signature is not None:
                break
            covered = set(regression.tests)
            explained |= covered
            left = remaining.ids - covered
            if not left or not covered:
                break
            remaining = Symptom(frozenset(left), None)
            self.log(f"bisect: {len(left)} failing tests not explained yet: another regression")
        for regression in result.regressions:
            for culprit in regression.culprits:
                if culprit not in result.culprits:
                    result.culprits.append(culprit)
            result.builds += regression.builds
        result.package_runs = self.phase_runs.get("package", 0)
        result.date_runs = self.phase_runs.get("builds", 0)
        result.confirm_runs = self.phase_runs.get("confirm", 0)
        if not result.culprits:
            self.notes.insert(0, "bisection could not confirm a culprit")
        result.notes = self.notes
        return result

    def _baseline_note(self, run: PytestRun, symptom: Symptom) -> str:
        if run.outcome == "could-not-run":
            return (
                "the tests cannot run with the stable releases either: no culprit can be "
                f"named. {run.error}"
            )
        extra = symptom.ids - run.failed_ids
        note = (
            f"{len(run.failed_ids)} tests also fail with the stable releases: this is not "
            "a regression caused by the nightlies"
        )
        if extra:
            note += (
                f"; {len(extra)} fail only with the nightlies: fix the failures with the "
                "stable releases first to bisect those"
            )
        return note

    def _one_regression(
        self,
        names: list[NormalizedName],
        chosen: dict[NormalizedName, IndexFile],
        symptom: Symptom,
        explained: set[str],
        seen: dict[NormalizedName, IndexFile],
    ) -> Regression | None:
        def with_nightlies(subset: frozenset[str]) -> bool:
            label = ", ".join(sorted(subset)) or "none"
            return self._trial(
                {n: chosen[canonicalize_name(n)] for n in subset},
                f"nightlies [{label}], the rest stable",
                symptom,
            ).fails

        search = bisection.find_culprits(names, with_nightlies, baseline_passes=True)
        culprits = search.culprits
        self.log(f"bisect: culprit {' + '.join(culprits)}")
        regression = Regression(culprits=list(culprits))
        for culprit in culprits:
            name = canonicalize_name(culprit)
            others = {canonicalize_name(n): chosen[canonicalize_name(n)] for n in culprits}
            others.pop(name)
            builds, found = self._bisect_builds(name, chosen[name], others, symptom, seen.get(name))
            bad_file = found[1]
            confirmed = self._confirm(builds, name, found, others, symptom, explained)
            if confirmed is None:
                return None
            regression.tests = sorted(confirmed)
            regression.builds.append(builds)
            seen[name] = bad_file
        return regression

    def _confirm(
        self,
        builds: CulpritBuilds,
        name: NormalizedName,
        found: tuple[IndexFile | None, IndexFile],
        others: dict[NormalizedName, IndexFile],
        symptom: Symptom,
        explained: set[str],
    ) -> set[str] | None:
        """Full suite on the first bad and the last good build; the tests explained."""
        good, bad = found
        bad_trial = self._trial(
            {**others, name: bad}, f"{name} {bad.version} (first bad)", symptom,
            full=True, phase="confirm",
        )  # fmt: skip
        if not bad_trial.fails or bad_trial.run is None:
            self.notes.append(
                f"{name}: the full suite with the first bad build {bad.version} does not show "
                "the failure again: no culprit named (a flaky test?)"
            )
            return None
        tests = (
            set(symptom.ids & bad_trial.run.failed_ids)
            if symptom.signature is None
            else {symptom.signature.split(":", 1)[1]}
        )
        if good is not None:
            good_trial = self._trial(
                {**others, name: good}, f"{name} {good.version} (last good)", symptom,
                full=True, phase="confirm",
            )  # fmt: skip
            run = good_trial.run
            ok = run is not None and (
                run.outcome == "passed" or (run.outcome == "failed" and run.failed_ids <= explained)
            )
            if not ok:
                what = "could not be installed" if run is None else f"{run.outcome}"
                builds.note = (
                    f"the full suite with {good.version} (the build before the first bad one) "
                    f"{what}: the last good build is not known"
                )
                builds.last_good = None
        return tests

    def _history(self, name: NormalizedName, newest: IndexFile) -> tuple[list[IndexFile], str]:
        """Builds of ``name`` oldest first, ending with ``newest``, and where they came from."""
        assert self.target is not None
        assert newest.upload_time is not None
        if name in self._histories:
            return self._histories[name]
        use_view = self._history_view_works(name, newest)
        source = "the index's as-of history view" if use_view else "the files listed now"
        live = None if use_view else (self.nightly_index.files(name) or [])
        builds = [newest]
        seen = {newest.sha256 or newest.url}
        while len(builds) < self.options.max_builds and builds[-1].upload_time is not None:
            moment = builds[-1].upload_time - ONE_TICK
            if use_view:
                files = self.nightly_index.files_as_of(name, self.history_template, moment) or []
            else:
                files = live or []
            pick = choose(files, self.target, before=moment)
            if isinstance(pick, Missing) or (pick.sha256 or pick.url) in seen:
                break
            seen.add(pick.sha256 or pick.url)
            builds.append(pick)
        self._histories[name] = (builds[::-1], source)
        return self._histories[name]

    def _history_view_works(self, name: NormalizedName, newest: IndexFile) -> bool:
        """Whether the as-of view at the newest build's upload time lists that build."""
        assert newest.upload_time is not None
        try:
            files = self.nightly_index.files_as_of(name, self.history_template, newest.upload_time)
        except IndexUnavailable:
            return False
        return any(f.sha256 == newest.sha256 and f.filename == newest.filename for f in files or [])

    def _bisect_builds(
        self,
        name: NormalizedName,
        newest: IndexFile,
        others: dict[NormalizedName, IndexFile],
        symptom: Symptom,
        after: IndexFile | None,
    ) -> tuple[CulpritBuilds, tuple[IndexFile | None, IndexFile]]:
        """The first bad build of ``name`` (after ``after``, an earlier regression's)."""
        if newest.upload_time is None:
            note = "the index publishes no upload times (PEP 700): cannot bisect by date"
            return (
                CulpritBuilds(name=name, first_bad=_build(newest), builds_considered=1, note=note),
                (None, newest),
            )
        builds, source = self._history(name, newest)
        start = next(
            (
                i
                for i, b in enumerate(builds)
                if after and (b.sha256 or b.url) == (after.sha256 or after.url)
            ),
            None,
        )
        if start is not None:
            builds = builds[start:]
        self.log(f"bisect: {len(builds)} builds of {name} from {source}")

        def fails(build: IndexFile) -> bool:
            when = build.upload_time.strftime("%Y-%m-%d %H:%M:%S") if build.upload_time else "?"
            sha = (build.sha256 or "?")[:12]
            return self._trial(
                {**others, name: build},
                f"{name} {build.version} uploaded {when} sha256 {sha}",
                symptom,
                phase="builds",
            ).fails

        found = bisection.find_first_bad(builds, fails, first_passes=start is not None)
        note = None
        if found.last_good is None:
            note = (
                f"every retained build of {name} fails ({len(builds)} found in {source}): "
                "the first bad build is this one or an earlier one no longer retained"
                if len(builds) > 1
                else f"no earlier build of {name} is retained ({source})"
            )
        return (
            CulpritBuilds(
                name=name,
                last_good=_build(found.last_good) if found.last_good else None,
                first_bad=_build(found.first_bad),
                builds_considered=len(builds),
                runs=found.runs,
                note=note,
            ),
            (found.last_good, found.first_bad),
        )


@dataclass(frozen=True)
class Symptom:
    """The failure a bisection looks for: failing test ids, or pytest's error."""

    ids: frozenset[str]
    signature: str | None  # a run that could not run: its error, paths left out

    @classmethod
    def of(cls, run: PytestRun) -> Symptom:
        if run.outcome == "failed":
            return cls(frozenset(run.failed_ids), None)
        return cls(frozenset(), run.signature)


@dataclass
class Trial:
    run: PytestRun | None  # None: could not install
    install_error: str | None
    fails: bool = False

    def against(self, symptom: Symptom) -> Trial:
        run = self.run
        if run is None:
            fails = False
        elif symptom.signature is not None:
            fails = run.outcome == "could-not-run" and run.signature == symptom.signature
        else:
            fails = run.outcome == "failed" and bool(run.failed_ids & symptom.ids)
        return Trial(run, self.install_error, fails)


def counts_text(c: Counts) -> str:
    """The one summary line of a run's counts (CI logs and the report)."""
    return (
        f"{c.failed} failed, {c.errors} errors, {c.passed} passed, {c.skipped} skipped, "
        f"{c.xfailed} xfailed, {c.xpassed} xpassed"
    )


def job_url() -> str | None:
    """The CI job's own page, when the workflow says it (``NIGHTWHEELS_JOB_URL``)."""
    value = os.environ.get("NIGHTWHEELS_JOB_URL", "").strip()
    if not value.startswith(("https://", "http://")) or value.rstrip("/").endswith("/job"):
        return None  # a runner without job.check_run_id leaves the id empty
    return value


def stopped_report(
    project_dir: Path,
    index_url: str,
    stable_index_url: str,
    message: str,
    *,
    outcome: str = "could-not-run",
    step: str = "configure",
    exit_code: int = EXIT_USAGE,
) -> Report:
    """The report of a run that stopped before testing (a bad option, no pyproject.toml)."""
    try:
        project = read_project(project_dir)
        name, version = project.name, project.version
    except ProjectConfigError:
        name, version = project_dir.resolve().name or "project", None
    run_url, commit = ci_context(project_dir) if project_dir.is_dir() else (None, None)
    return Report(
        project=name,
        project_version=version,
        created_at=datetime.now(UTC),
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=exit_code,
        index_url=index_url,
        stable_index_url=stable_index_url,
        python="unknown",
        platform="unknown",
        step=step,  # type: ignore[arg-type]
        error=message if outcome == "could-not-run" else None,
        install_error=message if outcome == "install-error" else None,
        run_url=run_url,
        job_url=job_url(),
        commit=commit,
    )


def _content_addressed(f: IndexFile) -> bool:
    """Whether ``f``'s URL contains a prefix (16+ hex digits) of its sha256."""
    if not f.sha256:
        return False
    digest = f.sha256.lower()
    return any(
        len(part) >= 16 and digest.startswith(part.lower())
        for part in urlsplit(f.url).path.split("/")
    )
