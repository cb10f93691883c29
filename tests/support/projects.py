"""Small sample projects, in git, for the build tools (built for real with `build`)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from tests.support.clients import clean_env

COMMIT_DATE = "2026-11-25T01:02:03+00:00"  # -> .dev202611250102


def git(root: Path, *args: str, date: str = COMMIT_DATE) -> str:
    env = clean_env(
        GIT_AUTHOR_NAME="Sample",
        GIT_AUTHOR_EMAIL="sample@example.invalid",
        GIT_COMMITTER_NAME="Sample",
        GIT_COMMITTER_EMAIL="sample@example.invalid",
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    return subprocess.run(
        ["git", "-C", str(root), *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit_all(root: Path, message: str = "sample", date: str = COMMIT_DATE) -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message, date=date)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def static_project(
    root: Path, name: str = "sample-nightly", version: str = "1.2.0.dev0", value: str = "1"
) -> Path:
    """A pure hatchling project with a static ``[project] version``, committed."""
    module = name.replace("-", "_")
    write(
        root,
        {
            "pyproject.toml": f"""
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [project]
                name = "{name}"
                # the version every nightly used to share
                version = "{version}"
                requires-python = ">=3.8"

                [tool.hatch.build.targets.wheel]
                packages = ["src/{module}"]
            """,
            f"src/{module}/__init__.py": f"VALUE = {value}\n",
        },
    )
    commit_all(root)
    return root


def scm_project(root: Path, name: str = "scm-sample", tag: str | None = "v0.4.1") -> Path:
    """A setuptools + setuptools-scm project, tagged."""
    module = name.replace("-", "_")
    write(
        root,
        {
            "pyproject.toml": f"""
                [build-system]
                requires = ["setuptools>=69", "setuptools-scm>=8"]
                build-backend = "setuptools.build_meta"

                [project]
                name = "{name}"
                dynamic = ["version"]

                [tool.setuptools_scm]
            """,
            f"src/{module}/__init__.py": "VALUE = 'scm'\n",
        },
    )
    commit_all(root)
    if tag:
        git(root, "tag", tag)
        (root / "CHANGES").write_text("after the tag\n")
        commit_all(root, "after tag")
    return root
