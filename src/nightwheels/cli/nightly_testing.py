"""``nightwheels test`` (run the tests against nightlies) and ``nightwheels report``.

The weekly nightly job runs both, and ``nightwheels test`` is measured against doing it by
hand (``benchmarks/nightly_testing.py``). So, like ``upload``, they parse their arguments
with argparse (:mod:`nightwheels.cli.parsing`) and load neither typer nor pydantic:
``nightwheels.cli.main`` sends them straight to :func:`main_test` and :func:`main_report`.
The Typer app only lists them and shows their help (:func:`register`). Each command
imports what it uses when it uses it (``report`` loads httpx only to post a result).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nightwheels.cli.exits import EXIT_ERROR, EXIT_INSTALL, EXIT_USAGE, echo, fail
from nightwheels.cli.parsing import Parser, int_in, show_help, wants_help
from nightwheels.errors import InstallFailed, NightwheelsError, ProjectConfigError

if TYPE_CHECKING:
    import typer

    from nightwheels.nightly_testing.results import Report

__all__ = ["build_report_parser", "build_test_parser", "main_report", "main_test", "register"]

TEST_SUMMARY = "Run PROJECT_DIR's tests with nightly builds of its dependencies."
TEST_EXITS = (
    "Exit status: 0 pass, 1 test failures, 2 usage or configuration error, 3 the "
    "environment could not be installed, 4 pytest could not run the tests, 5 no nightly "
    "found. A report (--save, --markdown) is written for each of them."
)
REPORT_SUMMARY = "Report a saved result: tracking issue, markdown file, compatibility record."
REPORT_MORE = (
    "Run it in a separate step from the tests, so the code under test never holds the "
    "issue-writing token (GITHUB_TOKEN) or the server token (NIGHTWHEELS_TOKEN, or trusted "
    "publishing in a GitHub Actions job with id-token: write). A missing "
    'REPORT.json (the test step stopped before writing it) is reported as "could not run", '
    "with a link to this run."
)
PYPI = "https://pypi.org/simple/"
GITHUB_API = "https://api.github.com"


def _env(name: str) -> str | None:
    """An environment variable as a default (empty counts as unset, as for typer options)."""
    return os.environ.get(name) or None


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def build_test_parser() -> argparse.ArgumentParser:
    """``nightwheels test``'s options, one ``add_argument`` each."""
    parser = Parser(
        prog="nightwheels test", description=TEST_SUMMARY, epilog=TEST_EXITS, allow_abbrev=False
    )
    add = parser.add_argument
    add(
        "project_dir",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="PROJECT_DIR",
        help="project directory [default: .]",
    )
    # Split off before parsing (main_test); declared for the help, and to catch pytest
    # arguments given without the -- before them.
    add(
        "pytest_args",
        nargs="*",
        metavar="-- PYTEST_ARGS",
        help="pytest's own arguments, after --: nightwheels test . -- -k name",
    )
    add(
        "--index",
        default=_env("NIGHTWHEELS_INDEX_URL"),
        metavar="URL",
        help="the nightly index (…/simple/), required (env NIGHTWHEELS_INDEX_URL)",
    )
    add(
        "--stable-index",
        default=_env("NIGHTWHEELS_STABLE_INDEX_URL") or PYPI,
        metavar="URL",
        help="where every other package comes from (env NIGHTWHEELS_STABLE_INDEX_URL) "
        f"[default: {PYPI}]",
    )
    add(
        "--nightly",
        action="append",
        metavar="NAMES",
        help="only these packages from nightlies (comma-separated, repeatable)",
    )
    add(
        "--all-available",
        action="store_true",
        help="also transitive dependencies that have nightlies",
    )
    add("--stable", action="store_true", help="no nightlies: the baseline")
    add("--extra", action="append", metavar="EXTRA", help="install these extras (repeatable)")
    add(
        "--group",
        action="append",
        metavar="GROUP",
        help="install these dependency groups (repeatable)",
    )
    add(
        "--bisect",
        action="store_true",
        help="on failure, find the culprit nightly and its first bad build",
    )
    add(
        "--allow-missing",
        action="store_true",
        help="test with the stable release where a nightly has no wheel for this platform",
    )
    add(
        "--allow-no-nightlies",
        action="store_true",
        help="when the index has no nightly of any dependency, test the stable releases "
        "(default: exit 5)",
    )
    add("--python", metavar="PATH", help="interpreter for the tests")
    add(
        "--uv",
        default=_env("NIGHTWHEELS_UV"),
        metavar="PATH",
        help="uv binary (env NIGHTWHEELS_UV)",
    )
    add("--save", type=Path, metavar="PATH", help="write the JSON report here")
    add("--markdown", type=Path, metavar="PATH", help="write a markdown report here")
    add(
        "--workdir",
        type=Path,
        metavar="PATH",
        help="build the environments here (default: a temporary dir)",
    )
    add("--keep", action="store_true", help="keep the environments")
    add(
        "--history-url",
        metavar="URL",
        help="the index's as-of view, with {when}; default: …/as-of/{when}/simple/",
    )
    add(
        "--max-builds",
        type=int_in(2),
        default=30,
        metavar="N",
        help="builds to bisect [x>=2] [default: %(default)s]",
    )
    add("--timeout", type=float, metavar="SECONDS", help="seconds per pytest run")
    return parser


def build_report_parser() -> argparse.ArgumentParser:
    """``nightwheels report``'s options, one ``add_argument`` each."""
    parser = Parser(
        prog="nightwheels report",
        description=REPORT_SUMMARY,
        epilog=REPORT_MORE,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add(
        "report_file",
        nargs="?",
        type=Path,
        metavar="REPORT",
        help="the result nightwheels test --save wrote",
    )
    add("--github", metavar="OWNER/REPO", help="keep a tracking issue there")
    add(
        "--key",
        default="nightly",
        metavar="KEY",
        help="one tracking issue per key (e.g. per job of a matrix) [default: %(default)s]",
    )
    add("--label", action="append", metavar="LABEL", help="labels for the tracking issue")
    add(
        "--assignee",
        action="append",
        metavar="LOGIN",
        help="assign the tracking issue to these GitHub users",
    )
    add(
        "--github-api",
        default=_env("GITHUB_API_URL") or GITHUB_API,
        metavar="URL",
        help=f"GitHub API URL (env GITHUB_API_URL) [default: {GITHUB_API}]",
    )
    add("--author", metavar="LOGIN", help="the bot login (default: whoever the token is)")
    add("--markdown", type=Path, metavar="PATH", help="write markdown here")
    add(
        "--server",
        metavar="URL",
        help="post to this nightwheels server's compatibility record",
    )
    add(
        "--repository",
        default=_env("GITHUB_REPOSITORY"),
        metavar="OWNER/REPO",
        help="the downstream repository (env GITHUB_REPOSITORY)",
    )
    add(
        "--report-log",
        type=Path,
        metavar="PATH",
        help="instead of REPORT.json: a pytest --report-log file",
    )
    add(
        "--junit-xml",
        type=Path,
        metavar="PATH",
        help="instead of REPORT.json: JUnit XML from the test run",
    )
    add(
        "--python",
        metavar="PATH",
        help="with --report-log/--junit-xml: the tested environment's python",
    )
    add(
        "--index",
        default=_env("NIGHTWHEELS_INDEX_URL"),
        metavar="URL",
        help="the nightly index tested (env NIGHTWHEELS_INDEX_URL)",
    )
    add(
        "--project",
        metavar="NAME",
        help="the downstream project (default: pyproject.toml's name)",
    )
    add(
        "--save",
        type=Path,
        metavar="PATH",
        help="write the report read from --report-log/--junit-xml here",
    )
    return parser


def _external_report(
    report_log: Path | None,
    junit_xml: Path | None,
    python: str | None,
    index: str | None,
    project: str | None,
    repository: str | None,
) -> Report:
    """A report from results produced elsewhere and the environment they ran in."""
    import shutil
    import tempfile

    from nightwheels.nightly_testing.external import report_from_results
    from nightwheels.nightly_testing.project import read_project
    from nightwheels.nightly_testing.runner import ci_context, job_url

    if project is None:
        try:
            project = read_project(Path(".")).name
        except ProjectConfigError:
            project = (repository or "").rsplit("/", 1)[-1] or None
    if project is None:
        raise ProjectConfigError("name the project tested: --project NAME")
    if python is not None and index is None:
        raise ProjectConfigError("--python needs --index: the nightly index the tests used")
    run_url, commit = ci_context(Path("."))
    workdir = Path(tempfile.mkdtemp(prefix="nightwheels-report-"))
    try:
        return report_from_results(
            project=project,
            report_log=report_log,
            junit_xml=junit_xml,
            python=python,
            index_url=index,
            run_url=run_url,
            job_url=job_url(),
            commit=commit,
            workdir=workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main_test(argv: Sequence[str]) -> int:
    """``nightwheels test ARGV``: the exit status (usage errors exit)."""
    argv = list(argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    parser = build_test_parser()
    args, unexpected = parser.parse_known_args(argv)
    unexpected = [*args.pytest_args, *unexpected]
    if args.index is None:
        parser.error("the nightly index is needed: --index URL (or NIGHTWHEELS_INDEX_URL)")
    try:
        return _test(args, unexpected, pytest_args)
    except KeyboardInterrupt:
        return 130  # quietly, as the Typer commands do


def _test(args: argparse.Namespace, unexpected: list[str], pytest_args: list[str]) -> int:
    save: Path | None = args.save
    markdown_file: Path | None = args.markdown

    def write(report: Report) -> None:
        from nightwheels.nightly_testing import markdown

        if save is not None:
            report.save(save)
        if markdown_file is not None:
            markdown_file.parent.mkdir(parents=True, exist_ok=True)
            markdown_file.write_text(markdown.render(report), encoding="utf-8")

    def stop(message: str, code: int, outcome: str = "could-not-run") -> NoReturn:
        from nightwheels.nightly_testing.runner import stopped_report

        if save is not None or markdown_file is not None:
            step = "install" if outcome == "install-error" else "configure"
            report = stopped_report(
                args.project_dir, args.index, args.stable_index, message,
                outcome=outcome, step=step, exit_code=code,
            )  # fmt: skip
            with contextlib.suppress(OSError):
                write(report)
        fail(message, code)

    try:
        if unexpected:
            raise ProjectConfigError(
                f"unexpected arguments {' '.join(unexpected)!r}: put pytest arguments after --"
            )
        if args.stable and (args.nightly or args.all_available):
            raise ProjectConfigError("--stable takes no nightlies: drop --nightly")
        if args.nightly and args.all_available:
            raise ProjectConfigError("use either --nightly or --all-available")
        if args.history_url is not None and "{when}" not in args.history_url:
            raise ProjectConfigError("--history-url must contain {when}")
        if not args.project_dir.is_dir():
            raise ProjectConfigError(f"{args.project_dir} is not a directory")
        report = _run_tests(args, pytest_args)
    except InstallFailed as exc:
        stop(exc.message, EXIT_INSTALL, "install-error")
    except NightwheelsError as exc:
        stop(exc.message, EXIT_USAGE)
    except OSError as exc:
        stop(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_USAGE)
    from nightwheels.nightly_testing.summary import summary_lines

    for line in summary_lines(report):
        echo(line)
    write(report)
    return report.exit_code


def _run_tests(args: argparse.Namespace, pytest_args: list[str]) -> Report:
    from nightwheels.nightly_testing.environment import start_first_venv

    # uv makes the first environment while the rest of the machinery is imported.
    first_env = start_first_venv(args.uv, args.python, args.workdir)
    try:
        from nightwheels.nightly_testing.runner import NightlyTester, TestOptions

        options = TestOptions(
            project_dir=args.project_dir,
            index_url=args.index,
            stable_index_url=args.stable_index,
            nightly=_csv(args.nightly) if args.nightly else None,
            all_available=args.all_available,
            stable_only=args.stable,
            extras=_csv(args.extra),
            groups=_csv(args.group),
            pytest_args=pytest_args,
            bisect=args.bisect,
            allow_missing=args.allow_missing,
            allow_none=args.allow_no_nightlies,
            python=args.python,
            uv=args.uv,
            workdir=args.workdir,
            keep=args.keep,
            history_url=args.history_url,
            max_builds=args.max_builds,
            timeout=args.timeout,
        )
        tester = NightlyTester(options, log=lambda line: echo(line, err=True), first_env=first_env)
        # What start-up made lives until exit: no collection need look at it again, the
        # interpreter's last one included (10 ms of the 15 ms exit, measured).
        gc.freeze()
    except BaseException:
        if first_env is not None:
            first_env.discard()
            if args.workdir is None:
                shutil.rmtree(first_env.workdir, ignore_errors=True)
        raise
    return tester.run()


def main_report(argv: Sequence[str]) -> int:
    """``nightwheels report ARGV``: the exit status (usage errors exit)."""
    args = build_report_parser().parse_args(list(argv))
    if not (args.github or args.markdown or args.server or args.save):
        fail("nothing to do: give --github, --markdown, --server and/or --save", EXIT_USAGE)
    try:
        _report(args)
    except ProjectConfigError as exc:
        fail(exc.message, EXIT_USAGE)
    except NightwheelsError as exc:
        fail(exc.message, EXIT_ERROR)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
    return 0


def _report(args: argparse.Namespace) -> None:
    from nightwheels.nightly_testing.results import load_report, missing_report

    github: str | None = args.github
    markdown_file: Path | None = args.markdown
    server: str | None = args.server
    repository: str | None = args.repository
    if args.report_log is not None or args.junit_xml is not None:
        if args.report_file is not None:
            raise ProjectConfigError("give REPORT.json or --report-log/--junit-xml, not both")
        report = _external_report(
            args.report_log, args.junit_xml, args.python, args.index, args.project,
            repository or github,
        )  # fmt: skip
        if args.save is not None:
            report.save(args.save)
    elif args.report_file is None:
        raise ProjectConfigError("give REPORT.json, --report-log or --junit-xml")
    elif args.report_file.exists():
        report = load_report(args.report_file)
    else:
        report = missing_report(args.report_file, repository or github)
        echo(f"no report at {args.report_file}: reporting that the tests could not run")
    known = []
    if (github or markdown_file) and report.outcome != "passed":
        from nightwheels.nightly_testing.known_bad import fetch_known_bad, server_of

        index_server = server or server_of(report.index_url)
        if index_server:
            known = fetch_known_bad(index_server, report)
    for k in known:
        echo(f"known upstream regression: {k.name} {k.version} ({k.link or k.reason})")
    if markdown_file is not None:
        from nightwheels.nightly_testing import markdown

        markdown_file.write_text(markdown.render(report, known=known), encoding="utf-8")
        echo(f"wrote {markdown_file}")
    if github:
        _track(args, report, known)
    if server and not any(n.sha256 for n in report.nightlies):
        echo(f"nothing to record on {server}: the report names no nightly")
    elif server:
        from nightwheels.nightly_testing.compat_client import post_result, report_token

        token = report_token(server, report.project)
        answer = post_result(server, token, report, repository)
        ignored = answer.get("ignored")
        echo(
            f"recorded {len(answer.get('recorded', []))} nightlies on {server}"
            + (f" (not files of that index: {', '.join(ignored)})" if ignored else "")
        )


def _track(args: argparse.Namespace, report: Report, known: list) -> None:  # type: ignore[type-arg]
    """Open, update or close the tracking issue on GitHub, and say which."""
    from nightwheels.nightly_testing.tracking import update_tracking_issue
    from nightwheels.trackers.github_issues import GitHubIssues

    client = GitHubIssues(args.github, os.environ.get("GITHUB_TOKEN", ""), args.github_api)
    try:
        done = update_tracking_issue(
            client,
            report,
            key=args.key,
            author=args.author,
            labels=_csv(args.label) or None,
            assignees=_csv(args.assignee) or None,
            known=known,
        )
    finally:
        client.close_connection()
    messages = {
        "created": f"opened tracking issue #{done.number}",
        "updated": f"tracking issue #{done.number} still failing the same way: description updated",
        "changed": f"tracking issue #{done.number}: the failures changed: "
        "description updated, commented",
        "closed": f"tests pass: closed tracking issue #{done.number}",
        "kept": f"tests pass, but with no nightly: tracking issue #{done.number} stays open",
        "none": "tests pass and no tracking issue is open: nothing to do",
    }
    echo(messages[done.action] + (f" {done.url}" if done.url else ""))


def show_test_help() -> NoReturn:
    show_help(build_test_parser(), "test", f"{TEST_SUMMARY}\n\n{TEST_EXITS}")


def show_report_help() -> NoReturn:
    show_help(build_report_parser(), "report", f"{REPORT_SUMMARY}\n\n{REPORT_MORE}")


def _restore_separator(args: list[str]) -> list[str]:
    """click drops the first ``--`` of the arguments it passes through; argv still shows it."""
    argv = sys.argv
    if "--" not in argv or "--" in args:
        return args
    after = min(len(argv) - argv.index("--") - 1, len(args))
    return [*args[: len(args) - after], "--", *args[len(args) - after :]]


def register(app: typer.Typer) -> None:
    """List ``test`` and ``report`` in the Typer app; their arguments go to argparse as they are.

    From a shell neither builds the app (``cli.main``); this serves ``nightwheels --help``,
    ``nightwheels test --help`` and in-process runs of the app.
    """
    import typer

    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}

    def test_command(ctx: typer.Context) -> None:
        args = _restore_separator(list(ctx.args))
        if wants_help(args):
            show_test_help()
        sys.exit(main_test(args))

    def report_command(ctx: typer.Context) -> None:
        if wants_help(ctx.args):
            show_report_help()
        sys.exit(main_report(ctx.args))

    for name, command, summary in (
        ("test", test_command, TEST_SUMMARY),
        ("report", report_command, REPORT_SUMMARY),
    ):
        command.__annotations__["ctx"] = typer.Context  # not a global name to resolve
        app.command(name, help=summary, add_help_option=False, context_settings=passthrough)(
            command
        )
