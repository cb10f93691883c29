"""The README's command blocks, run as typed and in order, against the server they start.

What a new user does on a fresh machine (issue 16.1): the ``sh`` blocks, copied into a
shell in a copy of this checkout. The first block creates the venv, installs nightwheels
and runs ``serve``; the others run in a second shell, one after the other, as a person would
paste them. Only the surroundings differ from a fresh machine, to stay offline and cheap:

- the packages come from this test venv (``PYTHONPATH``), so ``pip install`` finds them
  installed instead of downloading them, and builds use its hatchling (no build isolation);
- pip's index is the server under test (nothing can come from elsewhere), pip's and uv's
  configuration files are ignored;
- ``127.0.0.1:8000`` becomes a free port (``NIGHTWHEELS_PORT`` for ``serve``).

The last block, the test command, is checked against ``.ci/run`` instead (it runs this test).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(kind: str | None = None) -> list[str]:
    found = [(lang, body) for lang, body in BLOCK.findall(README.read_text())]
    return [body for lang, body in found if kind is None or lang == kind]


def test_every_block_says_whether_it_runs() -> None:
    """``sh``: runs as typed (below); ``text``: a template. Nothing in between."""
    kinds = [lang for lang, _ in BLOCK.findall(README.read_text())]
    assert kinds and set(kinds) <= {"sh", "text"}, kinds


def test_the_test_command_is_what_ci_runs() -> None:
    command = blocks("sh")[-1].strip()
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == command


def _checkout(tmp: Path) -> Path:
    """A copy of what ``pip install -e .`` needs, as a fresh clone has it."""
    checkout = tmp / "nightwheels"
    checkout.mkdir()
    shutil.copytree(
        ROOT / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    return checkout


def _environment(tmp: Path, port: int) -> dict[str, str]:
    shim = tmp / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(getattr(sys, "_base_executable", sys.executable))
    return {
        "HOME": str(tmp / "home"),
        "PATH": f"{shim}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": f"http://127.0.0.1:{port}/simple/",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling for "no build isolation"
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(tmp / "uv-cache"),
        "NIGHTWHEELS_PORT": str(port),
    }


def _wait_healthy(url: str, server: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the first block exited {server.returncode}:\n{server.stdout}")
        try:
            if httpx.get(f"{url}/-/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer within {timeout} s")


@pytest.mark.slow
def test_the_quick_start_runs_as_typed(tmp_path: Path) -> None:
    port = free_port()
    here = "127.0.0.1:8000"
    sh = [block.replace(here, f"127.0.0.1:{port}") for block in blocks("sh")]
    start, *rest, _test_command = sh
    assert "nightwheels serve" in start and len(rest) >= 2
    checkout = _checkout(tmp_path)
    env = _environment(tmp_path, port)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["bash", "-e", "-c", start],
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the shell and the server it runs: one group to stop
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server, timeout=240)
        script = "\n".join(rest)
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    # What the walkthrough promises: the wheel is on the index and installed from it,
    # the token's user administers the new project, the client came from the server.
    assert "unchanged 1" in done.stdout  # nightwheels upload, after twine and uv publish
    python = checkout / ".venv" / "bin" / "python"
    installed = subprocess.run(
        [
            str(python),
            "-c",
            "import demo, nightwheels; print(demo.__version__, nightwheels.__file__)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    version, client = installed.stdout.split()
    assert version == "1.0.dev1", installed.stderr
    assert "site-packages" in client and str(checkout / ".venv") in client
    assert not (checkout / "demo" / "nightwheels-data").exists()
