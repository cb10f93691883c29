"""`nightwheels ci init` workflows and the composite action: parsed and checked for practice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nightwheels import __version__
from nightwheels.ci.workflows import (
    CHECKOUT,
    DOWNLOAD_ARTIFACT,
    SETUP_PYTHON,
    UPLOAD_ARTIFACT,
    WorkflowOptions,
    build_workflow,
    repository_from_remote,
    weekly_test_workflow,
)
from nightwheels.errors import Misconfigured
from tests.support import clients
from tests.support.cli import nightwheels
from tests.support.projects import git, static_project
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel

ROOT = Path(__file__).resolve().parent.parent
REPO = "scientific-thing/thing"
SERVER = "https://nightlies.example.org"
PINS = {p.repo: p.sha for p in (CHECKOUT, SETUP_PYTHON, UPLOAD_ARTIFACT, DOWNLOAD_ARTIFACT)}
ACTION = "nightwheels-org/nightwheels@" + "a" * 40
SECRET = re.compile(r"\$\{\{\s*secrets\.")
EXPRESSION = re.compile(r"\$\{\{")


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def runs_project_code(job: dict[str, Any]) -> bool:
    return any(
        str(s.get("uses", "")).startswith("actions/checkout")
        or re.search(r"nightwheels (build|test)\b|cibuildwheel", str(s.get("run", "")))
        for s in steps(job)
    )


def variants() -> list[WorkflowOptions]:
    return [
        WorkflowOptions(repository=REPO, server=SERVER),
        WorkflowOptions(repository=REPO, server=SERVER, trusted_publishing=True),
        WorkflowOptions(repository=REPO, server=SERVER, action=ACTION, label="nightly"),
        WorkflowOptions(
            repository=REPO,
            server=SERVER,
            trusted_publishing=True,
            action=ACTION,
            nightlies=("numpy", "scipy"),
        ),
        WorkflowOptions(repository=REPO, server=SERVER, cibuildwheel=True),
        WorkflowOptions(
            repository=REPO,
            server=SERVER,
            cibuildwheel=True,
            trusted_publishing=True,
            runners=("ubuntu-latest", "macos-15-intel"),
        ),
    ]


def check_common(workflow: dict[Any, Any], cron: str) -> None:
    on = triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch"}  # no push, no pull_request
    assert on["schedule"] == [{"cron": cron}]
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} inherits permissions"
        assert f"github.repository == '{REPO}'" in str(job.get("if")), f"job {name} runs in forks"
        for step in steps(job):
            if "uses" in step:
                repo, _, ref = step["uses"].partition("@")
                assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{step['uses']} is not pinned"
                assert PINS.get(repo, ref) == ref
            if str(step.get("uses", "")).startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
            script = str(step.get("run", ""))
            assert not EXPRESSION.search(script), f"expression interpolated in a script: {script}"
            assert "set -x" not in script
            assert not re.search(r"echo .*(TOKEN|secrets)", script, re.I)
        if runs_project_code(job):
            # Code from the project or the nightly index: read-only, no secrets, no OIDC.
            assert job["permissions"] == {"contents": "read"}, name
            assert not SECRET.search(yaml.safe_dump(job)), name
        for value in re.findall(r".*secrets\..*", yaml.safe_dump(job)):
            assert value.strip().startswith(("NIGHTWHEELS_TOKEN:", "token:")), value


@pytest.mark.parametrize("opts", variants())
def test_build_workflow(opts: WorkflowOptions) -> None:
    text = build_workflow(opts)
    workflow = yaml.safe_load(text)
    check_common(workflow, opts.build_cron)
    build, upload = workflow["jobs"]["build"], workflow["jobs"]["upload"]
    assert runs_project_code(build) and not runs_project_code(upload)
    assert upload["needs"] == "build"
    assert (
        "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
        in upload["if"]
    )
    assert build["steps"][0]["with"]["fetch-depth"] == 0  # tags and commit date for the version
    if opts.trusted_publishing:
        assert upload["permissions"] == {"id-token": "write"}
        assert not SECRET.search(text)
    else:
        assert upload["permissions"] == {}
        assert text.count("${{ secrets.NIGHTWHEELS_TOKEN }}") == 1
    last = upload["steps"][-1]
    if opts.action:
        assert last["uses"] == opts.action
        assert last["with"]["server"] == SERVER and last["with"]["label"] == opts.label
    else:
        assert last["run"] == f"nightwheels upload dist/ --label {opts.label}"
        assert last["env"]["NIGHTWHEELS_SERVER"] == SERVER
    assert "id-token" not in str(build["permissions"])
    download = upload["steps"][0]
    assert download["with"]["pattern"] == "nightly-dist*" and download["with"]["merge-multiple"]
    if opts.cibuildwheel:
        assert build["strategy"]["matrix"]["os"] == list(opts.runners)
        (stamp,) = [s for s in build["steps"] if s.get("id") == "version"]
        assert "nightwheels version --write" in stamp["run"] and stamp["shell"] == "bash"
        (cibw,) = [s for s in build["steps"] if "cibuildwheel --output-dir" in str(s.get("run"))]
        assert (
            cibw["env"]["SETUPTOOLS_SCM_PRETEND_VERSION"] == "${{ steps.version.outputs.version }}"
        )
        assert cibw["env"]["CIBW_ENVIRONMENT_PASS_LINUX"] == "SETUPTOOLS_SCM_PRETEND_VERSION"
        assert build["steps"][-1]["with"]["name"] == "nightly-dist-${{ matrix.os }}"
    else:
        assert any(
            s.get("run") == "nightwheels build --wheel --outdir dist" for s in build["steps"]
        )


@pytest.mark.parametrize("opts", variants())
def test_test_workflow(opts: WorkflowOptions) -> None:
    workflow = yaml.safe_load(weekly_test_workflow(opts))
    check_common(workflow, opts.test_cron)
    test, report = workflow["jobs"]["test"], workflow["jobs"]["report"]
    assert runs_project_code(test) and not runs_project_code(report)
    assert report["needs"] == "test" and "!cancelled()" in report["if"]
    # The results reach the tracking issue and the server's compatibility record (the
    # early-warning matrix and upstream alerts), with a report-only token or trusted publishing.
    last = report["steps"][-1]
    assert last["run"] == (
        f'nightwheels report report.json --github "$GITHUB_REPOSITORY" --server {opts.server}'
    )
    if opts.trusted_publishing:
        assert report["permissions"] == {"issues": "write", "id-token": "write"}
        assert last["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
        assert not SECRET.search(weekly_test_workflow(opts))
    else:
        assert report["permissions"] == {"issues": "write"}
        assert last["env"] == {
            "GITHUB_TOKEN": "${{ github.token }}",
            "NIGHTWHEELS_TOKEN": "${{ secrets.NIGHTWHEELS_REPORT_TOKEN }}",
        }
    installs = [s["run"] for s in test["steps"] if "pip install" in str(s.get("run"))]
    wheel = f"{opts.server}/-/client/nightwheels-{__version__}-py3-none-any.whl"
    assert installs == [f'python -m pip install "nightwheels[nightly] @ {wheel}"']
    run = next(s["run"] for s in test["steps"] if "nightwheels test" in str(s.get("run")))
    assert f"--index {opts.index_url}" in run
    if opts.nightlies:
        assert "--nightly numpy,scipy" in run


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repository": "not a repo"}, "owner/repo"),
        ({"server": "ftp://x"}, "http(s) URL"),
        ({"server": "https://x.org/$(id)"}, "not allowed"),
        ({"build_cron": "every night"}, "cron"),
        ({"action": "nightwheels-org/nightwheels@v1"}, "40-character commit SHA"),
        ({"python": "3.12; rm -rf /"}, "version like 3.12"),
        ({"nightlies": ("numpy", "bad name!")}, "not a valid project name"),
        ({"client_url": 'https://x.org/a.whl" && curl evil'}, "wheel's http(s) URL"),
        ({"client_sha256": "abc"}, "64 hex digits"),
        ({"runners": ("ubuntu-latest", "$(id)")}, "runner label"),
    ],
)
def test_options_are_validated(change: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"repository": REPO, "server": SERVER} | change
    with pytest.raises(Exception, match=re.escape(message)):
        WorkflowOptions(**values)


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("git@github.com:org/proj.git", "org/proj"),
        ("https://github.com/org/proj", "org/proj"),
        ("https://github.com/org/proj.git/", "org/proj"),
        ("https://gitlab.com/org/proj.git", None),
    ],
)
def test_repository_from_remote(url: str, repo: str | None) -> None:
    assert repository_from_remote(url) == repo


@pytest.fixture
def live(tmp_path: Path) -> Any:
    """A live server on the embedded default (ci init asks it for its client)."""
    with LiveServer(data=tmp_path / "data") as server:
        yield server


def every_install(text: str) -> list[str]:
    return re.findall(r"pip install ([^\n]*)", text)


def test_ci_init_cli(tmp_path: Path, live: LiveServer) -> None:
    root = static_project(tmp_path / "proj")
    git(root, "remote", "add", "origin", "git@github.com:scientific-thing/thing.git")
    out = nightwheels("ci", "init", "--server", live.url, cwd=root)
    assert out.returncode == 0, out.stderr
    files = sorted(p.name for p in (root / ".github" / "workflows").iterdir())
    assert files == ["nightly-wheels.yml", "test-nightlies.yml"]
    # Says what to do next: the upload secret, and the report token's.
    assert "the repository secret NIGHTWHEELS_TOKEN" in out.stdout
    assert "--permission report" in out.stdout and "NIGHTWHEELS_REPORT_TOKEN" in out.stdout
    workflow = yaml.safe_load((root / ".github/workflows/nightly-wheels.yml").read_text())
    assert f"github.repository == '{REPO}'" in workflow["jobs"]["build"]["if"]

    # The client comes from the server, pinned by the sha256 of the wheel it serves.
    pin = live_client(live)
    for name in files:
        installs = every_install((root / ".github/workflows" / name).read_text())
        assert installs, name
        for line in installs:
            assert f"@ {pin['url']}#sha256={pin['sha256']}" in line, line

    # Existing files are not overwritten without --force, and nothing is half-written.
    build_file = root / ".github/workflows/nightly-wheels.yml"
    build_file.write_text("# mine\n")
    (root / ".github/workflows/test-nightlies.yml").unlink()
    again = nightwheels("ci", "init", "--server", live.url, cwd=root)
    assert again.returncode == 1 and "--force" in again.stderr
    assert build_file.read_text() == "# mine\n"
    assert not (root / ".github/workflows/test-nightlies.yml").exists()
    forced = nightwheels(
        "ci", "init", "--build", "--trusted-publishing", "--server", live.url, "--force", cwd=root
    )
    assert forced.returncode == 0 and "trusted publisher" in forced.stdout
    assert "id-token: write" in build_file.read_text()
    assert not (root / ".github/workflows/test-nightlies.yml").exists()


def live_client(live: LiveServer) -> dict[str, Any]:
    import httpx

    pin: dict[str, Any] = httpx.get(f"{live.url}/-/client/").json()
    return pin


def test_ci_init_refuses_without_server_or_repository(tmp_path: Path) -> None:
    root = static_project(tmp_path / "proj")
    out = nightwheels("ci", "init", cwd=root)
    assert out.returncode == 2 and "no server given" in out.stderr
    out = nightwheels("ci", "init", "--server", SERVER, cwd=root)
    assert out.returncode == 1 and "--repository owner/repo" in out.stderr
    assert not (root / ".github").exists()


def test_ci_init_needs_the_server_to_pin_its_client(tmp_path: Path) -> None:
    """No server to ask: one line saying so, and no workflow that would install by name."""
    from tests.support.server import free_port

    root = static_project(tmp_path / "proj")
    git(root, "remote", "add", "origin", "git@github.com:scientific-thing/thing.git")
    out = nightwheels("ci", "init", "--server", f"http://127.0.0.1:{free_port()}", cwd=root)
    assert out.returncode == 1
    assert "to pin the nightwheels client" in out.stderr and len(out.stderr.splitlines()) == 1
    assert not (root / ".github").exists()


# The composite action ------------------------------------------------------------------


def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_action_definition() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert set(spec["inputs"]) >= {"artifacts_path", "server", "token", "label"}
    assert spec["inputs"]["token"]["required"] is False  # trusted publishing without it
    assert spec["inputs"]["artifacts_path"]["default"] == "dist/"
    for step in spec["runs"]["steps"]:
        assert step["shell"] == "bash"
        assert not EXPRESSION.search(step["run"]), "inputs must reach scripts through env"
        assert "set -x" not in step["run"] and 'echo "$NIGHTWHEELS_TOKEN' not in step["run"]


def action_defaults() -> dict[str, str]:
    """What the runner puts in ``inputs.*`` for inputs a workflow does not set."""
    return {f"inputs.{k}": str(v.get("default", "")) for k, v in action()["inputs"].items()}


def _evaluate(value: str, context: dict[str, str]) -> str:
    def lookup(match: re.Match[str]) -> str:
        return context[match.group(1)]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lookup, value)


def test_action_upload_step_runs_against_the_live_server(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    """Run the action's upload script as the runner would, with its inputs in env."""
    dist = tmp_path / "my dist"  # a space: the script must quote it
    wheel = make_wheel(dist, "demo", "1.0.dev202611250102")
    upload_step = action()["runs"]["steps"][1]
    context = action_defaults() | {
        "steps.install.outputs.nightwheels": str(Path(sys.executable).parent / "nightwheels"),
        "inputs.server": server.url,
        "inputs.token": uploader,
        "inputs.artifacts_path": str(dist),
        "inputs.label": "main",
        "inputs.sdist": "false",
    }
    env = clients.clean_env(CI="true")
    env.update({k: _evaluate(str(v), context) for k, v in upload_step["env"].items()})
    out = subprocess.run(
        ["bash", "-c", upload_step["run"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "uploaded 1, replaced 0, unchanged 0, failed 0" in out.stdout
    assert uploader not in out.stdout + out.stderr
    # And the refusal the upload-nightly-action makes: an empty folder uploads nothing.
    wheel.unlink()
    out = subprocess.run(
        ["bash", "-c", upload_step["run"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "nothing to upload" in out.stderr


def test_cron_needs_five_fields() -> None:
    with pytest.raises(Misconfigured, match="5-field"):
        WorkflowOptions(repository=REPO, server=SERVER, test_cron="61 * * *")


BAD_WORKFLOWS = {
    "unpinned action": ("actions/checkout@" + CHECKOUT.sha, "actions/checkout@v4"),
    "secret in a script": (
        "run: nightwheels upload dist/ --label main",
        "run: nightwheels upload dist/ --label main --token ${{ secrets.NIGHTWHEELS_TOKEN }}",
    ),
    "no fork guard": ("if: github.repository == 'scientific-thing/thing'\n", "if: true\n"),
    "pull request trigger": ("  workflow_dispatch:\n", "  workflow_dispatch:\n  pull_request:\n"),
    "broad top-level permissions": (
        "permissions: {}\n\nconcurrency",
        "permissions: write-all\n\nconcurrency",
    ),
    "build job with a write token": (
        "    permissions:\n      contents: read\n",
        "    permissions:\n      contents: write\n",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_WORKFLOWS))
def test_the_checks_catch_bad_workflows(name: str) -> None:
    """The checks above can fail: each known-bad change to a good workflow is caught."""
    good = build_workflow(WorkflowOptions(repository=REPO, server=SERVER))
    old, new = BAD_WORKFLOWS[name]
    assert old in good
    bad = yaml.safe_load(good.replace(old, new, 1))
    with pytest.raises(AssertionError):
        check_common(bad, "17 3 * * *")


@pytest.mark.parametrize("opts", variants())
def test_generated_commands_exist(opts: WorkflowOptions) -> None:
    """Every `nightwheels ...` a workflow runs names a real command and real options."""
    for text in (build_workflow(opts), weekly_test_workflow(opts)):
        for job in yaml.safe_load(text)["jobs"].values():
            for step in steps(job):
                for command in re.findall(
                    r"nightwheels ([a-z]+)([^\n;|)]*)", str(step.get("run", ""))
                ):
                    name, rest = command
                    help_text = nightwheels(name, "--help").stdout
                    assert "usage:" in help_text.lower(), f"no command nightwheels {name}"
                    for option in re.findall(r"(--[a-z-]+)", rest):
                        assert option in help_text, f"nightwheels {name} has no {option}"


def test_test_workflow_bisects_and_installs_the_declared_test_dependencies(
    tmp_path: Path, live: LiveServer
) -> None:
    root = static_project(tmp_path / "proj")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + '\n[project.optional-dependencies]\ntest = ["pytest"]\n'
        + '\n[dependency-groups]\ntest = ["pytest-cov"]\n'
    )
    out = nightwheels(
        "ci", "init", "--test-nightlies", "--server", live.url, "--repository", REPO, cwd=root
    )
    assert out.returncode == 0, out.stderr
    workflow = yaml.safe_load((root / ".github/workflows/test-nightlies.yml").read_text())
    step = next(s for s in workflow["jobs"]["test"]["steps"] if "nightwheels test" in str(s))
    assert "--extra test --group test --bisect --save report.json" in step["run"]
    assert step["env"]["NIGHTWHEELS_JOB_URL"].endswith("/job/${{ job.check_run_id }}")
    # A test job that stopped before writing its report still reaches the tracker.
    download = workflow["jobs"]["report"]["steps"][0]
    assert "download-artifact" in download["uses"] and download["continue-on-error"] is True
