"""``nightwheels upload``: publish a folder of wheels, the one CI step of SPEC 4."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from nightwheels.cli.common import EXIT_ERROR, EXIT_USAGE, fail, handle_errors, is_ci
from nightwheels.core.filenames import parse_filename
from nightwheels.errors import Misconfigured, NightwheelsError, TrustedPublishingFailed
from nightwheels.upload import credentials as creds
from nightwheels.upload.client import RetryPolicy
from nightwheels.upload.progress import human_size, reporter_for
from nightwheels.upload.run import Summary, upload_folder


def _print_summary(summary: Summary, elapsed: float) -> None:
    size = sum(r.dist.size for r in summary.results)
    typer.echo(
        f"{summary.line()} ({len(summary.results)} files, {human_size(size)}, "
        f"{elapsed:.1f} s) to {summary.server}"
    )
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
        if github:  # an annotation on the run page, where people look
            typer.echo(f"::warning title=nightwheels::{warning}")
    for result in summary.failed:
        typer.echo(f"error: {result.dist.filename}: {result.reason}", err=True)
    if summary.projects:
        typer.echo("install with:")
        for label in summary.labels:
            typer.echo(
                f"  pip install --pre --upgrade --extra-index-url {summary.index_url(label)} "
                + " ".join(summary.projects)
            )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if github and step_summary:
        counts = summary.counts
        lines = [
            "### nightwheels upload",
            "",
            "| uploaded | replaced | unchanged | failed |",
            "| --- | --- | --- | --- |",
            "| "
            + " | ".join(
                str(counts.get(k, 0)) for k in ("uploaded", "replaced", "unchanged", "failed")
            )
            + " |",
            "",
        ]
        lines += [f"- failed: `{r.dist.filename}`: {r.reason}" for r in summary.failed]
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")


def _single_project(path: Path) -> str | None:
    """The one project the files in ``path`` belong to, if one (a hint for trusted publishing)."""
    names = set()
    candidates = [path] if path.is_file() else (path.iterdir() if path.is_dir() else [])
    for candidate in candidates:
        try:
            names.add(parse_filename(candidate.name).name)
        except NightwheelsError:
            continue
    return names.pop() if len(names) == 1 else None


def upload(
    path: Path = typer.Argument(
        Path("dist"), help="folder of wheels (or one file)", show_default=True
    ),
    label: list[str] = typer.Option(
        ["main"], "--label", help="label(s) to publish under (repeatable)"
    ),
    server: str | None = typer.Option(
        None, "--server", help="index URL (env NIGHTWHEELS_SERVER)", show_default=False
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        help="upload token (prefer env NIGHTWHEELS_TOKEN: options show in process lists); "
        "in GitHub Actions, trusted publishing is used when neither is set",
        show_default=False,
    ),
    sdist: bool = typer.Option(False, "--sdist", help="also upload source distributions"),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="parallel uploads"),
    retries: int = typer.Option(
        3, "--retries", min=0, max=20, help="retries per file on network errors and 5xx"
    ),
    backoff: float = typer.Option(
        1.0, "--backoff", min=0.0, help="first retry wait in seconds (doubles each time)"
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="network timeout, seconds"),
) -> None:
    """Upload every wheel in PATH (default dist/), in parallel; safe to re-run.

    Exits 1 if any file failed (each is named with the reason), 2 if there is nothing to
    upload or no server or token.
    """
    try:
        credentials = creds.resolve(server, token, project=_single_project(path))
    except (Misconfigured, TrustedPublishingFailed) as exc:
        fail(exc.message, EXIT_USAGE)
    if creds.is_cleartext_remote(credentials.server):
        typer.echo(
            f"warning: {credentials.server} is plain http: the token crosses the network "
            "unencrypted; use https",
            err=True,
        )
    if credentials.how == "trusted publishing":
        typer.echo("using a short-lived token from trusted publishing")
    started = time.monotonic()
    try:
        summary = upload_folder(
            path,
            credentials,
            reporter_for(is_ci()),
            labels=label,
            sdist=sdist,
            jobs=jobs,
            policy=RetryPolicy(attempts=retries + 1, backoff=backoff),
            timeout=timeout,
        )
    except Misconfigured as exc:
        fail(exc.message, EXIT_USAGE)
    _print_summary(summary, time.monotonic() - started)
    if not summary.ok:
        raise typer.Exit(EXIT_ERROR)


def register(app: typer.Typer) -> None:
    app.command("upload")(handle_errors(upload))
