"""``nightwheels version`` and ``nightwheels build``: stamp and build a nightly."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from packaging.version import Version

from nightwheels.building.project import head_commit, source_time, version_source
from nightwheels.building.stamp import nightly_version, parse_base
from nightwheels.cli.exits import handle_errors
from nightwheels.errors import InvalidVersion

ProjectArg = typer.Argument(Path("."), help="project directory", show_default=True)
BaseOption = typer.Option(
    None, "--base-version", help="base version instead of the project's own", show_default=False
)
TimeOption = typer.Option(
    "commit",
    "--time",
    help="date the nightly by the HEAD commit (same on every CI job) or 'now'",
)


def _nightly(project_dir: Path, base_version: str | None, time_source: str) -> Version:
    base = base_version or version_source(project_dir).base
    return nightly_version(base, source_time(project_dir, time_source))


def version(
    project_dir: Path = ProjectArg,
    base_version: str | None = BaseOption,
    time_source: str = TimeOption,
    as_json: bool = typer.Option(False, "--json", help="print details as JSON"),
    write: bool = typer.Option(
        False,
        "--write",
        help="also set it in the project's files, for good (in a CI checkout, before "
        "cibuildwheel or another build tool); scm projects take SETUPTOOLS_SCM_PRETEND_VERSION",
    ),
) -> None:
    """Print the nightly version (X.Y.Z.devYYYYMMDDHHMM) for the project in PROJECT_DIR."""
    from nightwheels.building.build import write_version

    source = None if base_version and not write else version_source(project_dir)
    base = base_version or (source.base if source else "")
    when = source_time(project_dir, time_source)
    nightly = nightly_version(base, when)
    if write and source is not None:
        written = write_version(source, str(nightly))
        if written is None:
            typer.echo(
                f"nothing written: {source.where} is read at build time; set "
                f"SETUPTOOLS_SCM_PRETEND_VERSION={nightly} for the build",
                err=True,
            )
        else:
            typer.echo(f"wrote version {nightly} to {written}", err=True)
    if not as_json:
        typer.echo(str(nightly))
        return
    details = {
        "version": str(nightly),
        "base_version": str(parse_base(base)),
        "source": source.where if source else "--base-version",
        "time": when.isoformat(),
        "commit": head_commit(project_dir),
    }
    typer.echo(json.dumps(details, indent=2))


def build(
    project_dir: Path = ProjectArg,
    wheel: bool = typer.Option(False, "--wheel", help="build a wheel (the default)"),
    sdist: bool = typer.Option(False, "--sdist", help="build a source distribution"),
    outdir: Path | None = typer.Option(
        None, "--outdir", "-o", help="output folder [default: PROJECT_DIR/dist]", show_default=False
    ),
    base_version: str | None = BaseOption,
    exact_version: str | None = typer.Option(
        None,
        "--version",
        help="use this version as is (e.g. computed once by `nightwheels version` for all jobs)",
        show_default=False,
    ),
    time_source: str = TimeOption,
    isolation: bool = typer.Option(
        True, "--isolation/--no-isolation", help="build in an isolated environment"
    ),
    config_setting: list[str] = typer.Option(
        [], "--config-setting", "-C", help="passed to the build backend (KEY=VALUE)"
    ),
) -> None:
    """Build PROJECT_DIR with its nightly version, using the standard `build` frontend.

    The version is injected (SETUPTOOLS_SCM_PRETEND_VERSION for setuptools-scm and
    hatch-vcs, otherwise a temporary rewrite of the file holding it, always restored).
    """
    from nightwheels.building.build import run_build

    source = version_source(project_dir)
    if exact_version:
        nightly = parse_base(exact_version)
        if nightly.local:
            raise InvalidVersion(
                f"{exact_version!r} has a local part (+...): indexes and pip order local "
                "versions badly; use X.Y.Z.devN"
            )
    else:
        nightly = _nightly(project_dir, base_version, time_source)
    typer.echo(f"building {source.name or project_dir} {nightly} (version from {source.where})")
    result = run_build(
        project_dir,
        source,
        nightly,
        outdir or project_dir / "dist",
        wheel=wheel or not sdist,
        sdist=sdist,
        isolation=isolation,
        config_settings=config_setting,
    )
    for path in result.files:
        typer.echo(f"built {path}")


def register(app: typer.Typer) -> None:
    app.command("version")(handle_errors(version))
    app.command("build")(handle_errors(build))
