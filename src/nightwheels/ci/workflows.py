"""GitHub Actions workflows written by ``nightwheels ci init``.

What every generated workflow follows (and the tests check):
- ``permissions: {}`` at the top; each job asks for the least it needs;
- third-party actions pinned by full commit SHA (the tag in a comment, for updates);
- runs only on schedule and manual dispatch, only in the canonical repository
  (``if: github.repository == 'owner/repo'``): never for forks or pull requests;
- the job that runs the project's code (build, tests) holds no secret and no write token;
  the upload and the issue-writing token live in separate jobs that run no project code;
- secrets reach a step only through ``env:``, never interpolated into a script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nightwheels import __version__
from nightwheels.core.names import DEFAULT_LABEL, normalize_name, validate_label
from nightwheels.errors import Misconfigured
from nightwheels.upload.credentials import normalize_server


@dataclass(frozen=True)
class Pin:
    repo: str
    sha: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.sha} # {self.tag}"


# Released versions (Node 24 runtimes), pinned by the commit their tag points to.
CHECKOUT = Pin("actions/checkout", "8e8c483db84b4bee98b60c0593521ed34d9990e8", "v6.0.1")
SETUP_PYTHON = Pin("actions/setup-python", "e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0")
UPLOAD_ARTIFACT = Pin(
    "actions/upload-artifact", "330a01c490aca151604b8cf639adc76d48f6c5d4", "v5.0.0"
)
DOWNLOAD_ARTIFACT = Pin(
    "actions/download-artifact", "634f93cb2916e3fdff6788551b99b062d0335ce0", "v5.0.0"
)
CIBUILDWHEEL = "cibuildwheel==4.3.5"

BUILD_FILE = "nightly-wheels.yml"
TEST_FILE = "test-nightlies.yml"
TOKEN_SECRET = "NIGHTWHEELS_TOKEN"  # noqa: S105 - the name of a secret, not a secret
# The report job's token: the ``report`` permission only, never the upload token.
REPORT_TOKEN_SECRET = "NIGHTWHEELS_REPORT_TOKEN"  # noqa: S105 - a secret's name

_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_CRON_FIELD = re.compile(r"^[0-9*/,-]+$")
_PYTHON = re.compile(r"^3\.\d{1,2}$")
_ACTION_REF = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._/-]+@[0-9a-f]{40}$")
_CLIENT_URL = re.compile(r"^https?://[A-Za-z0-9._~:/%@+-]+\.whl$", re.ASCII)
_SHA256 = re.compile(r"^[0-9a-f]{64}$", re.ASCII)
_RUNNER = re.compile(r"^[a-z0-9][a-z0-9.-]{1,40}$")
DEFAULT_RUNNERS = ("ubuntu-latest", "ubuntu-24.04-arm", "windows-latest", "macos-latest")
_GITHUB_REMOTE = re.compile(
    r"(?:github\.com[:/])(?P<repo>[A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$"
)


def repository_from_remote(url: str) -> str | None:
    match = _GITHUB_REMOTE.search(url.strip())
    return match.group("repo") if match else None


def check_repository(value: str) -> str:
    if not _REPOSITORY.match(value):
        raise Misconfigured(f"{value!r} is not a GitHub repository name like owner/repo")
    return value


def check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise Misconfigured(f"{value!r} is not a 5-field cron schedule like '17 3 * * *'")
    return " ".join(fields)


@dataclass(frozen=True)
class WorkflowOptions:
    repository: str
    server: str
    label: str = DEFAULT_LABEL
    python: str = "3.12"
    build_cron: str = "17 3 * * *"
    test_cron: str = "41 4 * * 1"
    trusted_publishing: bool = False
    action: str | None = None  # owner/repo@sha of the nightwheels action, instead of pip
    # The server's own client (``/-/client/``), pinned by sha256: nightwheels is not on
    # PyPI, and whoever took the name there would run code in these jobs.
    client_url: str | None = None  # default: <server>/-/client/nightwheels-<version>-...whl
    client_sha256: str | None = None
    nightlies: tuple[str, ...] = field(default_factory=tuple)
    # The project's test dependencies, as it declares them (ci init reads pyproject.toml).
    test_extras: tuple[str, ...] = field(default_factory=tuple)
    test_groups: tuple[str, ...] = field(default_factory=tuple)
    cibuildwheel: bool = False  # compiled project: a runner matrix with cibuildwheel
    runners: tuple[str, ...] = DEFAULT_RUNNERS

    def __post_init__(self) -> None:
        check_repository(self.repository)
        object.__setattr__(self, "server", normalize_server(self.server))
        if any(c in self.server for c in "'\"` $\\{}"):
            raise Misconfigured(f"the server URL {self.server!r} has characters not allowed here")
        validate_label(self.label)
        if not _PYTHON.match(self.python):
            raise Misconfigured(f"--python {self.python!r}: give a version like 3.12")
        object.__setattr__(self, "build_cron", check_cron(self.build_cron))
        object.__setattr__(self, "test_cron", check_cron(self.test_cron))
        if self.action is not None and not _ACTION_REF.match(self.action):
            raise Misconfigured(
                f"--action {self.action!r}: give owner/repo@<full 40-character commit SHA> "
                "(a tag or branch can be moved to point at other code)"
            )
        if self.client_url is not None and not _CLIENT_URL.fullmatch(self.client_url):
            raise Misconfigured(f"the client URL {self.client_url!r} is not a wheel's http(s) URL")
        if self.client_sha256 is not None and not _SHA256.fullmatch(self.client_sha256):
            raise Misconfigured(f"{self.client_sha256!r} is not a sha256 digest (64 hex digits)")
        for name in (*self.nightlies, *self.test_extras, *self.test_groups):
            normalize_name(name)
        for runner in self.runners:
            if not _RUNNER.match(runner):
                raise Misconfigured(f"--runner {runner!r} is not a GitHub runner label")

    @property
    def guard(self) -> str:
        return f"github.repository == '{self.repository}'"

    @property
    def index_url(self) -> str:
        if self.label == DEFAULT_LABEL:
            return f"{self.server}/simple/"
        return f"{self.server}/label/{self.label}/simple/"


def _header(title: str, opts: WorkflowOptions) -> str:
    return (
        f"# {title}\n"
        f"# Written by `nightwheels ci init` (nightwheels {__version__}); edit freely.\n"
        f"# Actions are pinned by commit: update the SHA and the tag comment together.\n"
    )


def client_requirement(opts: WorkflowOptions, extra: str | None = None) -> str:
    """``nightwheels[extra] @ <server>/-/client/<wheel>#sha256=...``: never by name from PyPI."""
    url = opts.client_url or (f"{opts.server}/-/client/nightwheels-{__version__}-py3-none-any.whl")
    pin = f"#sha256={opts.client_sha256}" if opts.client_sha256 else ""
    name = f"nightwheels[{extra}]" if extra else "nightwheels"
    return f"{name} @ {url}{pin}"


def _install_steps(opts: WorkflowOptions, extra: str | None = None) -> str:
    requirement = client_requirement(opts, extra)
    return f"""\
      - uses: {SETUP_PYTHON}
        with:
          python-version: "{opts.python}"
      - name: Install nightwheels
        run: python -m pip install "{requirement}"
"""


def _build_job(opts: WorkflowOptions) -> str:
    checkout = f"""\
      - uses: {CHECKOUT}
        with:
          fetch-depth: 0 # tags and the commit date make the nightly version
          persist-credentials: false
"""
    if not opts.cibuildwheel:
        return (
            f"""\
  build:
    name: Build the nightly
    # The canonical repository only: forks do not publish nightlies.
    if: {opts.guard}
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
"""
            + checkout
            + _install_steps(opts)
            + f"""\
      - name: Build the wheel with its nightly version
        run: nightwheels build --wheel --outdir dist
      - uses: {UPLOAD_ARTIFACT}
        with:
          name: nightly-dist
          path: dist/
          if-no-files-found: error
          retention-days: 3
"""
        )
    return (
        f"""\
  build:
    name: Build wheels on ${{{{ matrix.os }}}}
    # The canonical repository only: forks do not publish nightlies.
    if: {opts.guard}
    runs-on: ${{{{ matrix.os }}}}
    permissions:
      contents: read
    strategy:
      fail-fast: false
      matrix:
        os: [{", ".join(opts.runners)}]
    steps:
"""
        + checkout
        + f"""\
      - uses: {SETUP_PYTHON}
        with:
          python-version: "{opts.python}"
      - name: Install nightwheels and cibuildwheel
        run: python -m pip install "{client_requirement(opts)}" "{CIBUILDWHEEL}"
      - name: Set the nightly version in this checkout
        id: version
        shell: bash
        # Same commit, same version on every runner. Writes a static version in place;
        # setuptools-scm and hatch-vcs projects take SETUPTOOLS_SCM_PRETEND_VERSION below.
        run: echo "version=$(nightwheels version --write)" >> "$GITHUB_OUTPUT"
      - name: Build the wheels
        run: python -m cibuildwheel --output-dir dist
        env:
          SETUPTOOLS_SCM_PRETEND_VERSION: ${{{{ steps.version.outputs.version }}}}
          CIBW_ENVIRONMENT_PASS_LINUX: SETUPTOOLS_SCM_PRETEND_VERSION
      - uses: {UPLOAD_ARTIFACT}
        with:
          name: nightly-dist-${{{{ matrix.os }}}}
          path: dist/
          if-no-files-found: error
          retention-days: 3
"""
    )


def build_workflow(opts: WorkflowOptions) -> str:
    """Nightly: build (no secrets) then upload (no project code), canonical repo only."""
    if opts.trusted_publishing:
        permissions = (
            "    permissions:\n"
            "      id-token: write # trusted publishing: exchanged for a short-lived upload token\n"
        )
        upload_env = token_input = ""
    else:
        permissions = "    permissions: {}\n"
        upload_env = f"          NIGHTWHEELS_TOKEN: ${{{{ secrets.{TOKEN_SECRET} }}}}\n"
        token_input = f"          token: ${{{{ secrets.{TOKEN_SECRET} }}}}\n"
    if opts.action:
        upload_steps = f"""\
      - name: Upload to {opts.server}
        uses: {opts.action}
        with:
          artifacts_path: dist/
          server: {opts.server}
          label: {opts.label}
{token_input}"""
    else:
        upload_steps = (
            _install_steps(opts)
            + f"""\
      - name: Upload to {opts.server}
        run: nightwheels upload dist/ --label {opts.label}
        env:
          NIGHTWHEELS_SERVER: {opts.server}
{upload_env}"""
        )
    return (
        _header("Build nightly wheels every night and upload them to the nightly index.", opts)
        + f"""\
name: Nightly wheels

on:
  schedule:
    - cron: "{opts.build_cron}" # every night (UTC)
  workflow_dispatch:

permissions: {{}}

concurrency:
  group: ${{{{ github.workflow }}}}
  cancel-in-progress: true

jobs:
"""
        + _build_job(opts)
        + f"""\

  upload:
    name: Upload the nightly
    needs: build
    # Separate from the build: this job holds the upload credential and runs no project code.
    if: {opts.guard} && (github.event_name == 'schedule' || github.event_name == 'workflow_dispatch')
    runs-on: ubuntu-latest
{permissions}\
    steps:
      - uses: {DOWNLOAD_ARTIFACT}
        with:
          pattern: nightly-dist*
          merge-multiple: true
          path: dist/
"""
        + upload_steps
    )


def weekly_test_workflow(opts: WorkflowOptions) -> str:
    """Weekly: test against nightlies (read-only), then report (issue-writing, no project code)
    to the tracking issue and to the server's compatibility record (what the early-warning
    matrix and the upstream alerts are read from)."""
    if opts.trusted_publishing:
        report_permissions = (
            "      issues: write\n"
            "      id-token: write # trusted publishing: a short-lived token to report with\n"
        )
        report_env = ""
    else:
        report_permissions = "      issues: write\n"
        report_env = f"          NIGHTWHEELS_TOKEN: ${{{{ secrets.{REPORT_TOKEN_SECRET} }}}}\n"
    nightly = f" --nightly {','.join(opts.nightlies)}" if opts.nightlies else ""
    nightly += "".join(f" --extra {e}" for e in opts.test_extras)
    nightly += "".join(f" --group {g}" for g in opts.test_groups)
    return (
        _header("Run the tests against nightly wheels of our dependencies every week.", opts)
        + f"""\
name: Test against nightlies

on:
  schedule:
    - cron: "{opts.test_cron}" # weekly (UTC)
  workflow_dispatch:

permissions: {{}}

concurrency:
  group: ${{{{ github.workflow }}}}
  cancel-in-progress: true

jobs:
  test:
    name: Tests with nightly dependencies
    if: {opts.guard}
    runs-on: ubuntu-latest
    # Runs nightly code from the index: read-only, no secrets.
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
"""
        + _install_steps(opts, extra="nightly")  # uv, for the fresh test environments
        + f"""\
      - name: Test against nightlies
        run: nightwheels test . --index {opts.index_url}{nightly} --bisect --save report.json
        env:
          # The report links this job (job.check_run_id), not only the run.
          NIGHTWHEELS_JOB_URL: ${{{{ github.server_url }}}}/${{{{ github.repository }}}}/actions/runs/${{{{ github.run_id }}}}/job/${{{{ job.check_run_id }}}}
      - uses: {UPLOAD_ARTIFACT}
        if: ${{{{ !cancelled() }}}}
        with:
          name: nightly-test-report
          path: report.json
          if-no-files-found: warn
          retention-days: 14

  report:
    name: Report the results
    needs: test
    # Separate from the tests: this job can write issues and report, and runs no nightly code.
    if: ${{{{ !cancelled() && {opts.guard} }}}}
    runs-on: ubuntu-latest
    permissions:
{report_permissions}\
    steps:
      - uses: {DOWNLOAD_ARTIFACT}
        # No report when the test job stopped early: report files "could not run" then.
        continue-on-error: true
        with:
          name: nightly-test-report
"""
        + _install_steps(opts)
        + f"""\
      - name: Update the tracking issue and the compatibility record
        run: nightwheels report report.json --github "$GITHUB_REPOSITORY" --server {opts.server}
        env:
          GITHUB_TOKEN: ${{{{ github.token }}}}
{report_env}"""
    )


def write_workflows(
    directory: Path, opts: WorkflowOptions, *, build: bool, test: bool, force: bool = False
) -> list[Path]:
    """Write the chosen workflows; refuse to overwrite unless ``force`` (nothing half-written)."""
    wanted: dict[Path, str] = {}
    if build:
        wanted[directory / BUILD_FILE] = build_workflow(opts)
    if test:
        wanted[directory / TEST_FILE] = weekly_test_workflow(opts)
    existing = [p for p in wanted if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise Misconfigured(
            f"{names} already exist{'s' if len(existing) == 1 else ''}: use --force to overwrite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    return list(wanted)
