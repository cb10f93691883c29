"""``nightwheels upload``: publish a folder of wheels, the one CI step of SPEC 4.

Every nightly CI job runs this command, so it parses its own arguments with argparse and
loads neither typer nor click: ``nightwheels.cli.main`` sends ``nightwheels upload ...``
straight to :func:`main`. The Typer app only lists it (:func:`register`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nightwheels.cli.exits import EXIT_ERROR, EXIT_USAGE, echo, fail, handle_errors
from nightwheels.cli.parsing import Parser, float_from, int_in, wants_help
from nightwheels.cli.parsing import show_help as show_help_for
from nightwheels.core.names import DEFAULT_LABEL
from nightwheels.core.sizes import format_size
from nightwheels.core.text import counted

if TYPE_CHECKING:
    import typer

    from nightwheels.upload.run import Summary

# The upload machinery is imported by the functions that run it: the Typer app imports this
# module for every command (``serve`` too), and only ``upload`` needs the rest.

SUMMARY = "Upload every wheel in PATH (default dist/), in parallel; safe to re-run."
EXITS = (
    "Exits 1 if any file failed (each is named with the reason), 2 if there is nothing to "
    "upload or no server or token."
)


def build_parser() -> argparse.ArgumentParser:
    """The options, one ``add_argument`` each."""
    from nightwheels.upload.client import MAX_BATCH

    parser = Parser(
        prog="nightwheels upload", description=SUMMARY, epilog=EXITS, allow_abbrev=False
    )
    add = parser.add_argument
    add(
        "path",
        nargs="?",
        type=Path,
        default=Path("dist"),
        metavar="PATH",
        help="folder of wheels (or one file) [default: dist]",
    )
    # No default list here: argparse would append to it. None means [DEFAULT_LABEL].
    add(
        "--label",
        action="append",
        metavar="LABEL",
        help=f"label(s) to publish under (repeatable) [default: {DEFAULT_LABEL}]",
    )
    add("--server", metavar="URL", help="server URL (env NIGHTWHEELS_SERVER)")
    add(
        "--token",
        help="upload token (prefer env NIGHTWHEELS_TOKEN: options show in process lists); "
        "in GitHub Actions, trusted publishing is used when neither is set",
    )
    add("--sdist", action="store_true", help="also upload source distributions")
    add(
        "--session",
        metavar="NAME",
        help="upload into the named upload session (opened if needed; the jobs of a CI "
        "matrix share one): nothing is listed until `nightwheels session publish NAME`",
    )
    add(
        "--atomic",
        action="store_true",
        help="publish every file at once when all are uploaded, or none of them",
    )
    add(
        "--jobs",
        "-j",
        type=int_in(1, 64),
        default=8,
        metavar="N",
        help="parallel uploads [1<=x<=64] [default: %(default)s]",
    )
    add(
        "--batch",
        type=int_in(1, MAX_BATCH),
        default=50,
        metavar="N",
        help="small files per request; 1: one file per request, the legacy upload that "
        f"any index takes [1<=x<={MAX_BATCH}] [default: %(default)s]",
    )
    add(
        "--retries",
        type=int_in(0, 20),
        default=3,
        metavar="N",
        help="retries per file on network errors and 5xx [0<=x<=20] [default: %(default)s]",
    )
    add(
        "--backoff",
        type=float_from(0.0),
        default=1.0,
        metavar="SECONDS",
        help="first retry wait in seconds (doubles each time) [x>=0.0] [default: %(default)s]",
    )
    add(
        "--timeout",
        type=float_from(1.0),
        default=60.0,
        metavar="SECONDS",
        help="network timeout, seconds [x>=1.0] [default: %(default)s]",
    )
    return parser


def is_ci() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


def _print_summary(summary: Summary, elapsed: float) -> None:
    if summary.fatal and not any(r.outcome != "failed" for r in summary.results):
        echo(f"error: nothing was uploaded: {summary.fatal}", err=True)
        return
    size = sum(r.dist.size for r in summary.results)
    echo(
        f"{summary.line()} ({counted(len(summary.results), 'file')}, {format_size(size)}, "
        f"{elapsed:.1f} s) to {summary.server}"
    )
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    for warning in summary.warnings:
        echo(f"warning: {warning}", err=True)
        if github:  # an annotation on the run page, where people look
            echo(f"::warning title=nightwheels::{warning}")
    for result in summary.failed:
        echo(f"error: {result.dist.filename}: {result.reason}", err=True)
    if summary.fatal:
        echo(f"error: {summary.fatal}", err=True)
    if summary.session is not None and not summary.published:
        _print_session(summary)
        return
    if summary.projects:
        echo("install with:")
        for label in summary.labels:
            echo(
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


def _print_session(summary: Summary) -> None:
    session = summary.session
    assert session is not None
    if not summary.ok and session.name.startswith("atomic-"):
        echo("nothing was published (--atomic): fix the failed files and run it again", err=True)
        return
    echo(f"uploaded into session {session.name!r} of {session.project}; listed once published:")
    echo(f"  preview: pip install --pre --index-url {session.preview_url} {session.project}")
    echo(f"  publish: nightwheels session publish {session.name} --project {session.project}")


def _single_project(path: Path) -> str | None:
    """The one project the files in ``path`` belong to, if one (a hint for trusted publishing)."""
    from nightwheels.core.filenames import parse_filename
    from nightwheels.errors import NightwheelsError

    names = set()
    candidates = [path] if path.is_file() else (path.iterdir() if path.is_dir() else [])
    for candidate in candidates:
        try:
            names.add(parse_filename(candidate.name).name)
        except NightwheelsError:
            continue
    return names.pop() if len(names) == 1 else None


@handle_errors
def upload(args: argparse.Namespace) -> int:
    from nightwheels.errors import Misconfigured, TrustedPublishingFailed
    from nightwheels.upload import credentials as creds
    from nightwheels.upload.client import RetryPolicy
    from nightwheels.upload.progress import reporter_for
    from nightwheels.upload.run import upload_folder

    try:
        credentials = creds.resolve(args.server, args.token, project=_single_project(args.path))
    except (Misconfigured, TrustedPublishingFailed) as exc:
        fail(exc.message, EXIT_USAGE)
    if creds.is_cleartext_remote(credentials.server):
        echo(
            f"warning: {credentials.server} is plain http: the token crosses the network "
            "unencrypted; use https",
            err=True,
        )
    if credentials.how == "trusted publishing":
        echo("using a short-lived token from trusted publishing")
    started = time.monotonic()
    try:
        summary = upload_folder(
            args.path,
            credentials,
            reporter_for(is_ci()),
            labels=args.label or [DEFAULT_LABEL],
            sdist=args.sdist,
            jobs=args.jobs,
            batch=args.batch,
            policy=RetryPolicy(attempts=args.retries + 1, backoff=args.backoff),
            timeout=args.timeout,
            session=args.session,
            atomic=args.atomic,
        )
    except Misconfigured as exc:
        fail(exc.message, EXIT_USAGE)
    _print_summary(summary, time.monotonic() - started)
    return 0 if summary.ok else EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """``nightwheels upload ARGV``: the exit status (usage errors and ``--help`` exit)."""
    args = build_parser().parse_args(argv)
    try:
        return upload(args)
    except KeyboardInterrupt:
        return 130  # quietly, as the Typer commands do


def show_help() -> NoReturn:
    """``nightwheels upload --help``, in the layout of every other command."""
    show_help_for(build_parser(), "upload", f"{SUMMARY}\n\n{EXITS}")


def register(app: typer.Typer) -> None:
    """List ``upload`` in the Typer app; its arguments go to :func:`main` as they are.

    ``nightwheels upload`` from a shell never builds the app (``cli.main``); this serves
    ``nightwheels --help``, ``nightwheels upload --help`` and in-process runs of the app.
    """

    import typer

    def upload_command(ctx: typer.Context) -> None:
        if wants_help(ctx.args):
            show_help()
        sys.exit(main(ctx.args))

    upload_command.__annotations__["ctx"] = typer.Context  # not a global name to resolve

    app.command(
        "upload",
        help=SUMMARY,
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(upload_command)
