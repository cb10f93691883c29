"""action.yml with the upload-nightly-action's input names (issue 17 item 2).

A workflow that used scientific-python/upload-nightly-action switches by changing `uses:`
and adding `server`: its `with:` block stays. The action's upload step runs here as the
runner runs it (inputs through env, defaults for the rest) against a live server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import clients
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel
from tests.test_ci_workflows import _evaluate, action, action_defaults


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(data=tmp_path_factory.mktemp("action") / "data") as server:
        server.create_user("alice")
        yield server


def run_upload_step(**with_: str) -> subprocess.CompletedProcess[str]:
    """The action's upload step with these `with:` inputs, as the runner would run it."""
    step = action()["runs"]["steps"][1]
    context = action_defaults() | {f"inputs.{k}": v for k, v in with_.items()}
    context["steps.install.outputs.nightwheels"] = str(Path(sys.executable).parent / "nightwheels")
    env = clients.clean_env(CI="true")
    env.update({k: _evaluate(str(v), context) for k, v in step["env"].items()})
    return subprocess.run(
        ["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=120
    )


def listed(server: LiveServer, project: str, label: str = "main") -> set[str]:
    prefix = "" if label == "main" else f"/label/{label}"
    page = httpx.get(
        f"{server.url}{prefix}/simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    return {f["filename"] for f in page.json()["files"]} if page.status_code == 200 else set()


def test_the_upload_nightly_actions_inputs(live: LiveServer, tmp_path: Path) -> None:
    token = live.token("alice", "oldnames")
    wheel = make_wheel(tmp_path / "dist", "oldnames", "1.0.dev202612070101")
    # The with: block of a SPEC 4 workflow, unchanged, plus server.
    out = run_upload_step(
        server=live.url,
        artifacts_path=f"{tmp_path / 'dist'}/",
        anaconda_nightly_upload_organization="scientific-python-nightly-wheels",
        anaconda_nightly_upload_token=token,
        anaconda_nightly_upload_labels="main, weekly\nweekly\n",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "::notice title=nightwheels::anaconda_nightly_upload_organization is ignored" in out.stdout
    )
    assert token not in out.stdout + out.stderr
    assert listed(live, "oldnames") == {wheel.name}
    assert listed(live, "oldnames", "weekly") == {wheel.name}


def test_token_wins_over_the_old_name_and_no_label_means_main(
    live: LiveServer, tmp_path: Path
) -> None:
    token = live.token("alice", "newnames")
    wheel = make_wheel(tmp_path / "dist", "newnames", "1.0.dev202612070102")
    out = run_upload_step(
        server=live.url,
        artifacts_path=str(tmp_path / "dist"),
        token=token,
        anaconda_nightly_upload_token="an-old-anaconda-token",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "anaconda_nightly_upload_token is ignored: token is set" in out.stdout
    assert "organization" not in out.stdout  # not given: no notice
    assert listed(live, "newnames") == {wheel.name}
    # The old secret still holding an anaconda.org token: refused, and said so.
    out = run_upload_step(
        server=live.url,
        artifacts_path=str(tmp_path / "dist"),
        anaconda_nightly_upload_token="an-old-anaconda-token",
    )
    assert out.returncode != 0 and "not a nightwheels token" in out.stdout + out.stderr
