"""`nightwheels version` and `nightwheels build` on real sample projects, built by `build`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import clients
from tests.support.cli import nightwheels
from tests.support.projects import scm_project, static_project, write
from tests.support.server import LiveServer, wait_for

STAMP = "202611250102"


def wheel_metadata_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode()
    return next(
        line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Version: ")
    )


def test_version_command(tmp_path: Path) -> None:
    root = static_project(tmp_path / "p")
    out = nightwheels("version", str(root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"1.2.0.dev{STAMP}"
    details = json.loads(nightwheels("version", str(root), "--json").stdout)
    assert details["version"] == f"1.2.0.dev{STAMP}"
    assert details["source"] == "[project] version in pyproject.toml"
    assert len(details["commit"]) == 40
    assert nightwheels("version", str(root), "--base-version", "4.0").stdout.strip() == (
        f"4.1.dev{STAMP}"
    )
    bad = nightwheels("version", str(tmp_path / "nowhere"))
    assert (
        bad.returncode == 1 and "no pyproject.toml" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_build_static_project_upload_and_install(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    token = server.token("alice", "sample-nightly")
    root = static_project(tmp_path / "p", value="42")
    pyproject = (root / "pyproject.toml").read_bytes()
    dist = tmp_path / "dist"
    out = nightwheels("build", str(root), "--no-isolation", "--outdir", str(dist), real=True)
    assert out.returncode == 0, out.stdout + out.stderr
    wheel = dist / f"sample_nightly-1.2.0.dev{STAMP}-py3-none-any.whl"
    assert [p.name for p in dist.iterdir()] == [wheel.name]
    assert wheel_metadata_version(wheel) == f"1.2.0.dev{STAMP}"
    assert (root / "pyproject.toml").read_bytes() == pyproject  # restored byte for byte
    assert not list(root.glob("*.nightwheels-orig"))

    up = nightwheels("upload", str(dist), NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "uploaded 1, replaced 0, unchanged 0, failed 0" in up.stdout
    assert f"--extra-index-url {server.simple_url} sample-nightly" in up.stdout
    target = tmp_path / "site"
    clients.pip(
        "install",
        "--pre",
        "--no-deps",
        "--index-url",
        server.simple_url,
        "--target",
        str(target),
        "sample-nightly",
    )
    assert (target / "sample_nightly" / "__init__.py").read_text() == "VALUE = 42\n"
    again = nightwheels("upload", str(dist), NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token)
    assert "uploaded 0, replaced 0, unchanged 1, failed 0" in again.stdout


def test_build_scm_project_gets_pretend_version(tmp_path: Path) -> None:
    root = scm_project(tmp_path / "s", tag="v0.4.1")
    dist = tmp_path / "dist"
    out = nightwheels("build", str(root), "--no-isolation", "--outdir", str(dist))
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"scm_sample-0.4.2.dev{STAMP}-py3-none-any.whl"
    assert wheel_metadata_version(wheel) == f"0.4.2.dev{STAMP}"
    assert "latest git tag" in out.stdout


def test_failed_build_restores_the_project(tmp_path: Path) -> None:
    root = write(
        tmp_path / "broken",
        {
            "pyproject.toml": """
                [build-system]
                requires = []
                build-backend = "broken_backend"
                backend-path = ["."]

                [project]
                name = "broken"
                version = "0.1.dev0"
            """,
            "broken_backend.py": "def build_wheel(*args, **kwargs):\n    raise RuntimeError('boom')\n",
        },
    )
    original = (root / "pyproject.toml").read_bytes()
    out = nightwheels(
        "build", str(root), "--no-isolation", "--outdir", str(tmp_path / "dist"), real=True
    )
    assert out.returncode == 1
    assert "boom" in out.stderr  # the backend's own output is shown
    assert out.stderr.rstrip().endswith(
        "error: the build failed (python -m build exited 1); see above"
    )
    assert (root / "pyproject.toml").read_bytes() == original
    assert not list(root.glob("*.nightwheels-orig"))


def test_explicit_version_with_local_part_is_refused(tmp_path: Path) -> None:
    root = static_project(tmp_path / "p")
    out = nightwheels("build", str(root), "--version", "1.2.0.dev5+g1234", "--no-isolation")
    assert out.returncode == 1 and "local part" in out.stderr
    assert not (root / "dist").exists()


SLOW_BACKEND = """
import pathlib, time
def get_requires_for_build_wheel(config_settings=None):
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    pathlib.Path("building.flag").write_text("x")
    time.sleep(60)
    raise RuntimeError("not reached")
"""


def test_sigterm_during_build_restores_the_project(tmp_path: Path) -> None:
    root = write(
        tmp_path / "slow",
        {
            "pyproject.toml": """
                [build-system]
                requires = []
                build-backend = "slow_backend"
                backend-path = ["."]

                [project]
                name = "slow"
                version = "0.1.dev0"
            """,
            "slow_backend.py": SLOW_BACKEND,
        },
    )
    original = (root / "pyproject.toml").read_bytes()
    process = subprocess.Popen(
        [sys.executable, "-m", "nightwheels", "build", str(root), "--no-isolation"],
        cwd=root,
        env=clients.clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: (root / "building.flag").exists(), timeout=60)
        assert b"0.1.dev" in (root / "pyproject.toml").read_bytes()
        assert (root / "pyproject.toml").read_bytes() != original  # rewritten while building
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "interrupted" in err and "restored" in err
    assert (root / "pyproject.toml").read_bytes() == original
    assert not list(root.glob("*.nightwheels-orig"))


def test_version_write_sets_the_version_for_good(tmp_path: Path) -> None:
    """For CI checkouts before cibuildwheel: static versions are written, scm ones are not."""
    root = static_project(tmp_path / "p")
    out = nightwheels("version", str(root), "--write")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"1.2.0.dev{STAMP}"
    assert f'version = "1.2.0.dev{STAMP}"' in (root / "pyproject.toml").read_text()
    assert "wrote version" in out.stderr
    # Running it again (another step, another runner) gives the same version.
    assert nightwheels("version", str(root), "--write").stdout.strip() == f"1.2.0.dev{STAMP}"

    scm = scm_project(tmp_path / "s")
    before = (scm / "pyproject.toml").read_text()
    out = nightwheels("version", str(scm), "--write")
    assert out.stdout.strip() == f"0.4.2.dev{STAMP}"
    assert f"SETUPTOOLS_SCM_PRETEND_VERSION=0.4.2.dev{STAMP}" in out.stderr
    assert (scm / "pyproject.toml").read_text() == before
