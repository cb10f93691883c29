"""``nightwheels ci init``: write GitHub Actions workflows for nightlies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels.cli.exits import handle_errors

if TYPE_CHECKING:
    from nightwheels.ci.workflows import WorkflowOptions

ci_app = typer.Typer(help="Continuous integration set-up.", no_args_is_help=True)


def init(
    project_dir: Path = typer.Argument(Path("."), help="project directory"),
    build: bool = typer.Option(
        False, "--build", help="write the nightly build-and-upload workflow"
    ),
    test_nightlies: bool = typer.Option(
        False, "--test-nightlies", help="write the weekly test-against-nightlies workflow"
    ),
    server: str | None = typer.Option(
        None, "--server", help="nightwheels server URL (env NIGHTWHEELS_SERVER)", show_default=False
    ),
    repository: str | None = typer.Option(
        None,
        "--repository",
        help="owner/repo allowed to run them [default: from the git remote 'origin']",
        show_default=False,
    ),
    label: str = typer.Option("main", "--label", help="label to upload to and test from"),
    python: str = typer.Option("3.12", "--python", help="Python version for the jobs"),
    cron: str = typer.Option("17 3 * * *", "--cron", help="nightly build schedule (UTC)"),
    test_cron: str = typer.Option("41 4 * * 1", "--test-cron", help="weekly test schedule (UTC)"),
    trusted_publishing: bool = typer.Option(
        False,
        "--trusted-publishing",
        help="upload and report with GitHub OIDC (id-token: write) instead of token secrets",
    ),
    action: str | None = typer.Option(
        None,
        "--action",
        help="upload with the nightwheels action at owner/repo@<commit SHA> instead of pip",
        show_default=False,
    ),
    nightly: list[str] = typer.Option(
        [], "--nightly", help="dependency to test at its nightly (repeatable; default: all found)"
    ),
    cibuildwheel: bool = typer.Option(
        False, "--cibuildwheel", help="compiled project: build on a runner matrix with cibuildwheel"
    ),
    runner: list[str] = typer.Option(
        [], "--runner", help="runner label for the cibuildwheel matrix (repeatable)"
    ),
    force: bool = typer.Option(False, "--force", help="overwrite existing workflow files"),
) -> None:
    """Write .github/workflows/ files: nightly build+upload and weekly tests against nightlies.

    With neither --build nor --test-nightlies, both are written. The jobs install the
    nightwheels client the server offers (/-/client/), pinned by its sha256.
    """
    from nightwheels.building.project import git
    from nightwheels.ci.workflows import WorkflowOptions, repository_from_remote, write_workflows
    from nightwheels.client.api import ClientConfigError, client_pin
    from nightwheels.errors import Misconfigured
    from nightwheels.upload.credentials import normalize_server

    server = server or os.environ.get("NIGHTWHEELS_SERVER")
    if not server:
        raise ClientConfigError("no server given: pass --server URL or set NIGHTWHEELS_SERVER")
    if repository is None:
        remote = git(project_dir, "remote", "get-url", "origin")
        repository = repository_from_remote(remote) if remote else None
        if repository is None:
            raise Misconfigured(
                "cannot tell the GitHub repository from the git remote 'origin': pass "
                "--repository owner/repo (the workflows run only there, never in forks)"
            )
    client_url, client_sha256 = client_pin(normalize_server(server))
    names = [n.strip() for item in nightly for n in item.split(",") if n.strip()]
    extras, groups = _test_dependencies(project_dir)
    opts = WorkflowOptions(
        repository=repository,
        server=server,
        label=label,
        python=python,
        build_cron=cron,
        test_cron=test_cron,
        trusted_publishing=trusted_publishing,
        action=action,
        client_url=client_url,
        client_sha256=client_sha256,
        nightlies=tuple(names),
        test_extras=extras,
        test_groups=groups,
        cibuildwheel=cibuildwheel,
        **({"runners": tuple(runner)} if runner else {}),
    )
    both = not build and not test_nightlies
    written = write_workflows(
        project_dir / ".github" / "workflows",
        opts,
        build=build or both,
        test=test_nightlies or both,
        force=force,
    )
    for path in written:
        typer.echo(f"wrote {path}")
    for path in written:
        typer.echo(_next_step(path.name, opts))


def _next_step(workflow: str, opts: WorkflowOptions) -> str:
    """What the repository needs before ``workflow`` can upload or report."""
    from nightwheels.ci.workflows import BUILD_FILE, REPORT_TOKEN_SECRET, TOKEN_SECRET

    if opts.trusted_publishing:
        does = "uploads" if workflow == BUILD_FILE else "reports results"
        return (
            f"next: {workflow} {does} with trusted publishing; register it as a trusted "
            f"publisher: nightwheels project publisher add PROJECT --repository "
            f"{opts.repository} --workflow {workflow}"
        )
    if workflow == BUILD_FILE:
        return (
            f"next: add your upload token as the repository secret {TOKEN_SECRET} "
            "(Settings > Secrets and variables > Actions)"
        )
    return (
        f"next: add a token with the report permission (nightwheels token create --permission "
        f"report --project PROJECT) as the repository secret {REPORT_TOKEN_SECRET}: "
        "test-nightlies.yml reports to the compatibility record with it"
    )


def _test_dependencies(project_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``test``/``tests`` extra and dependency group the project declares, if any."""
    from nightwheels.errors import NightwheelsError
    from nightwheels.nightly_testing.project import read_project

    try:
        project = read_project(project_dir)
    except NightwheelsError:
        return (), ()
    wanted = ("test", "tests")
    extras = tuple(name for name in wanted if name in project.optional)[:1]
    groups = tuple(name for name in wanted if name in project.groups)[:1]
    return extras, groups


def register(app: typer.Typer) -> None:
    ci_app.command("init")(handle_errors(init))
    app.add_typer(ci_app, name="ci")
