"""``nightwheels test``: choose the nightlies, build the environment, verify it, run pytest,
and on failure find the culprit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from nightwheels.core.names import is_valid_name
from nightwheels.errors import IndexUnavailable, InstallFailed, ProjectConfigError
from nightwheels.nightly_testing import bisect as bisection
from nightwheels.nightly_testing.environment import (
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
    Bisection,
    Build,
    CulpritBuilds,
    MissingNightly,
    Nightly,
    Report,
)
from nightwheels.nightly_testing.selection import Missing, Target, choose
from nightwheels.nightly_testing.verify import verify_nightlies

TEST_TOOLS = ("pytest", "pytest-reportlog")
# Collection errors (an import that a nightly broke) are reported with the failures.
PYTEST_DEFAULTS = ("--continue-on-collection-errors",)
MAX_RERUN_IDS = 200
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

    def __init__(self, options: TestOptions, log: Callable[[str], None] = print) -> None:
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
        base = options.workdir or Path(tempfile.mkdtemp(prefix="nightwheels-test-"))
        base.mkdir(parents=True, exist_ok=True)
        self.workdir = base
        self.uv = Uv(uv_binary, self.stable_index.url, self.workdir)
        self.env_count = 0
        self.target: Target | None = None
        self.failing_ids: set[str] = set()
        self.notes: list[str] = []

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
        path = self.workdir / f"env-{self.env_count}"
        if path.exists():
            shutil.rmtree(path)
        return self.uv.create_venv(path, self.options.python or sys.executable)

    def _install(self, python: Path, nightlies: dict[NormalizedName, IndexFile]) -> None:
        lines = self._base_requirements()
        for name, f in sorted(nightlies.items()):
            fragment = f"#sha256={f.sha256}" if f.sha256 else ""
            lines.append(f"{name} @ {f.url}{fragment}")
        self.uv.install(python, lines, refresh=sorted(nightlies), rebuild=[self.project.name])
        problems = verify_nightlies(nightlies, installed(python), self.nightly_index.url)
        if problems:
            raise InstallFailed(
                "the environment does not hold the chosen nightlies:\n- " + "\n- ".join(problems)
            )

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

    def _requested_names(self, target: Target, python: Path) -> list[NormalizedName]:
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
            wanted = self.uv.compile_names(python, self._base_requirements())
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
        for name in names:
            files = self.nightly_index.files(name)
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
        try:
            return self._run()
        finally:
            self.nightly_index.close()
            self.stable_index.close()
            if self._own_workdir and not self.options.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _report(self, target: Target | None, **fields: object) -> Report:
        run_url, commit = ci_context(self.project.root)
        outcome = str(fields["outcome"])
        return Report(
            project=self.project.name,
            project_version=self.project.version,
            created_at=datetime.now(UTC),
            exit_code=EXIT_CODES[outcome],
            index_url=self.nightly_index.url,
            stable_index_url=self.stable_index.url,
            python=target.python_version if target else "unknown",
            platform=target.platform_tag if target else "unknown",
            run_url=run_url,
            commit=commit,
            **fields,  # type: ignore[arg-type]
        )

    def _run(self) -> Report:
        target: Target | None = None
        nightlies: list[Nightly] = []
        missing: list[MissingNightly] = []
        try:
            python = self._new_env()
            # The venv of the interpreter running us has its tags: no need to ask it.
            target = probe(python, self.workdir) if self.options.python else current_target()
            self.target = target
            names = self._requested_names(target, python)
            chosen, missing = self._choose(names, target)
            for name in sorted(chosen):
                stable_files = self.stable_index.files(name) or []
                stable = latest_stable(stable_files)
                nightlies.append(
                    Nightly(
                        name=name,
                        stable_version=str(stable) if stable else None,
                        **_build(chosen[name]).model_dump(),
                    )
                )
            self._announce(target, nightlies, missing)
            if missing and not self.options.allow_missing:
                raise InstallFailed(
                    "no usable nightly for: "
                    + "; ".join(f"{m.name} ({m.reason})" for m in missing)
                    + " (pass --allow-missing to test these with their stable release)"
                )
            self._install(python, chosen)
            environment = {name: info.version for name, info in sorted(installed(python).items())}
        except InstallFailed as exc:
            self.log(f"error: {exc.message}")
            return self._report(
                target,
                outcome="install-error",
                nightlies=nightlies,
                missing=missing,
                install_error=exc.message,
            )
        run = self._run_tests(python, list(self.options.pytest_args))
        self._discard(python)
        failed = run.exit_status != 0
        if run.exit_status in (4, 5) and not run.failures:
            raise ProjectConfigError(
                f"pytest could not run the tests (exit {run.exit_status}):\n{run.output_tail}"
            )
        self.log(
            f"tests: {run.counts.passed} passed, {run.counts.failed} failed, "
            f"{run.counts.errors} errors, {run.counts.skipped} skipped"
        )
        bisect_result = None
        if failed and self.options.bisect and chosen:
            self.failing_ids = run.failed_ids
            bisect_result = self._bisect(chosen)
        return self._report(
            target,
            outcome="failed" if failed else "passed",
            nightlies=nightlies,
            missing=missing,
            environment=environment,
            counts=run.counts,
            failures=run.failures,
            bisect=bisect_result,
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
            when = n.upload_time.strftime("%Y-%m-%d %H:%M") if n.upload_time else "?"
            self.log(
                f"  nightly {n.name} {n.version} (stable {n.stable_version or '-'}), "
                f"uploaded {when}, sha256 {(n.sha256 or '?')[:12]}"
            )
        for m in missing:
            self.log(f"  NO NIGHTLY for {m.name}: {m.reason}")

    # --- bisection ----------------------------------------------------------------------

    def _rerun_args(self) -> list[str]:
        if self.options.pytest_args:
            return list(self.options.pytest_args)
        ids = sorted(self.failing_ids)
        if len(ids) > MAX_RERUN_IDS:
            ids = sorted({i.split("::", 1)[0] for i in ids})
        return ids

    def _still_fails(self, nightlies: dict[NormalizedName, IndexFile], what: str) -> bool:
        python = self._new_env()
        try:
            self._install(python, nightlies)
        except InstallFailed as exc:
            self.notes.append(f"{what}: could not install, counted as not failing ({exc.message})")
            self.log(f"  {what}: could not install")
            self._discard(python)
            return False
        run = self._run_tests(python, self._rerun_args())
        self._discard(python)
        fails = bool(run.failed_ids & self.failing_ids)
        self.log(f"  {what}: {'fails' if fails else 'passes'}")
        return fails

    def _bisect(self, chosen: dict[NormalizedName, IndexFile]) -> Bisection:
        names = sorted(chosen)
        self.log(
            f"bisect: {len(names)} nightlies, re-running {len(self.failing_ids)} failing tests"
        )

        def with_nightlies(subset: frozenset[str]) -> bool:
            label = ", ".join(sorted(subset)) or "none"
            return self._still_fails(
                {n: chosen[n] for n in subset}, f"nightlies [{label}], the rest stable"
            )

        search = bisection.find_culprits(names, with_nightlies)
        result = Bisection(
            culprits=list(search.culprits),
            baseline="failed" if search.baseline_fails else "passed",
            package_runs=len(search.runs),
        )
        if search.baseline_fails:
            result.notes = [
                "the failing tests also fail with the stable releases: "
                "this is not a regression caused by the nightlies",
                *self.notes,
            ]
            return result
        self.log(f"bisect: culprit {' + '.join(search.culprits)}")
        for culprit in search.culprits:
            result.builds.append(self._bisect_builds(culprit, chosen, search.culprits))
            result.date_runs += result.builds[-1].runs
        result.notes = self.notes
        return result

    def _history(self, name: NormalizedName, newest: IndexFile) -> tuple[list[IndexFile], str]:
        """Builds of ``name`` oldest first, ending with ``newest``, and where they came from."""
        assert self.target is not None
        assert newest.upload_time is not None
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
        return builds[::-1], source

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
        culprit: str,
        chosen: dict[NormalizedName, IndexFile],
        culprits: tuple[str, ...],
    ) -> CulpritBuilds:
        name = canonicalize_name(culprit)
        newest = chosen[name]
        if newest.upload_time is None:
            return CulpritBuilds(
                name=name,
                first_bad=_build(newest),
                builds_considered=1,
                note="the index publishes no upload times (PEP 700): cannot bisect by date",
            )
        builds, source = self._history(name, newest)
        self.log(f"bisect: {len(builds)} builds of {name} from {source}")
        others = {n: chosen[canonicalize_name(n)] for n in culprits if n != culprit}

        def fails(build: IndexFile) -> bool:
            when = build.upload_time.strftime("%Y-%m-%d %H:%M:%S") if build.upload_time else "?"
            return self._still_fails(
                {**others, name: build}, f"{name} {build.version} uploaded {when}"
            )

        found = bisection.find_first_bad(builds, fails)
        note = None
        if found.last_good is None:
            note = (
                f"every retained build of {name} fails ({len(builds)} found in {source}): "
                "the first bad build is this one or an earlier one no longer retained"
                if len(builds) > 1
                else f"no earlier build of {name} is retained ({source})"
            )
        return CulpritBuilds(
            name=name,
            last_good=_build(found.last_good) if found.last_good else None,
            first_bad=_build(found.first_bad),
            builds_considered=len(builds),
            runs=found.runs,
            note=note,
        )
