"""Run the real clients (pip, uv, twine) isolated from this machine's configuration.

This machine's pip has a global config and PIP_* variables that add local indexes: every
call here uses ``--isolated`` with ``PIP_CONFIG_FILE=os.devnull`` (uv: ``UV_NO_CONFIG=1``)
and explicit index URLs, so an install can only come from the server under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TWINE_", "NIGHTWHEELS_", "AWS_"))
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env.update(extra)
    return env


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, env=env or clean_env(), capture_output=True, text=True, cwd=cwd, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def pip(
    *args: str, check: bool = True, cache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cache_args = ["--cache-dir", str(cache)] if cache else ["--no-cache-dir"]
    return run([sys.executable, "-m", "pip", "--isolated", *cache_args, *args], check=check)


def uv(*args: str, cache: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "uv"), *args], env=clean_env(UV_CACHE_DIR=str(cache)), check=check)


def twine_upload(
    url: str, token: str, *files: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            str(BIN / "twine"),
            "upload",
            "--disable-progress-bar",
            "--non-interactive",
            "--repository-url",
            url,
            "-u",
            "__token__",
            "-p",
            token,
            *map(str, files),
        ],
        check=check,
    )


def uv_publish(
    url: str, token: str, *files: Path, cache: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return uv(
        "publish",
        "--publish-url",
        url,
        "--token",
        token,
        *map(str, files),
        cache=cache,
        check=check,
    )
