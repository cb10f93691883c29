"""``nightwheels test`` (run the tests against nightlies) and ``nightwheels report``."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels.cli.exits import EXIT_ERROR, EXIT_INSTALL, EXIT_USAGE, fail
from nightwheels.errors import InstallFailed, NightwheelsError, ProjectConfigError

if TYPE_CHECKING:
    from nightwheels.nightly_testing.results import Report


def _split_positionals(args: list[str]) -> tuple[Path, list[str]]:
    """``[PROJECT_DIR] [-- PYTEST_ARGS]``: click hides where ``--`` was, so look at argv."""
    argv = sys.argv
    after = len(argv) - argv.index("--") - 1 if "--" in argv else 0
    after = min(after, len(args))
    before, pytest_args = args[: len(args) - after], args[len(args) - after :]
    if len(before) > 1:
        raise ProjectConfigError(
            f"unexpected arguments {' '.join(before[1:])!r}: put pytest arguments after --"
        )
    return Path(before[0] if before else "."), pytest_args


def _csv(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


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


def register(app: typer.Typer) -> None:
    @app.command(
        "test",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    def test(
        args: list[str] = typer.Argument(
            None,
            metavar="[PROJECT_DIR] [-- PYTEST_ARGS]",
            show_default=False,
            help="project directory (default: .), then pytest's own arguments after --",
        ),
        index: str = typer.Option(
            ..., "--index", envvar="NIGHTWHEELS_INDEX_URL", help="the nightly index (…/simple/)"
        ),
        stable_index: str = typer.Option(
            "https://pypi.org/simple/",
            "--stable-index",
            envvar="NIGHTWHEELS_STABLE_INDEX_URL",
            help="where every other package comes from",
        ),
        nightly: list[str] = typer.Option(
            [], "--nightly", help="only these packages from nightlies (comma-separated)"
        ),
        all_available: bool = typer.Option(
            False, "--all-available", help="also transitive dependencies that have nightlies"
        ),
        stable: bool = typer.Option(False, "--stable", help="no nightlies: the baseline"),
        extra: list[str] = typer.Option([], "--extra", help="install these extras"),
        group: list[str] = typer.Option([], "--group", help="install these dependency groups"),
        bisect: bool = typer.Option(
            False, "--bisect", help="on failure, find the culprit nightly and its first bad build"
        ),
        allow_missing: bool = typer.Option(
            False,
            "--allow-missing",
            help="test with the stable release where a nightly has no wheel for this platform",
        ),
        allow_no_nightlies: bool = typer.Option(
            False,
            "--allow-no-nightlies",
            help="when the index has no nightly of any dependency, test the stable releases "
            "(default: exit 5)",
        ),
        python: str | None = typer.Option(None, "--python", help="interpreter for the tests"),
        uv: str | None = typer.Option(None, "--uv", envvar="NIGHTWHEELS_UV", help="uv binary"),
        save: Path | None = typer.Option(None, "--save", help="write the JSON report here"),
        markdown_file: Path | None = typer.Option(
            None, "--markdown", help="write a markdown report here"
        ),
        workdir: Path | None = typer.Option(
            None, "--workdir", help="build the environments here (default: a temporary dir)"
        ),
        keep: bool = typer.Option(False, "--keep", help="keep the environments"),
        history_url: str | None = typer.Option(
            None,
            "--history-url",
            help="the index's as-of view, with {when}; default: …/as-of/{when}/simple/",
        ),
        max_builds: int = typer.Option(30, "--max-builds", min=2, help="builds to bisect"),
        timeout: float | None = typer.Option(None, "--timeout", help="seconds per pytest run"),
    ) -> None:
        """Run PROJECT_DIR's tests with nightly builds of its dependencies.

        Exit status: 0 pass, 1 test failures, 2 usage or configuration error, 3 the
        environment could not be installed, 4 pytest could not run the tests, 5 no nightly
        found. A report (--save, --markdown) is written for each of them.
        """
        from nightwheels.nightly_testing import markdown
        from nightwheels.nightly_testing.runner import NightlyTester, TestOptions, stopped_report
        from nightwheels.nightly_testing.summary import summary_lines

        def write(report: Report) -> None:
            if save is not None:
                report.save(save)
            if markdown_file is not None:
                markdown_file.parent.mkdir(parents=True, exist_ok=True)
                markdown_file.write_text(markdown.render(report), encoding="utf-8")

        def stop(message: str, code: int, outcome: str = "could-not-run") -> None:
            if save is not None or markdown_file is not None:
                try:
                    where = _split_positionals(list(args or []))[0]
                except ProjectConfigError:
                    where = Path(".")
                step = "install" if outcome == "install-error" else "configure"
                report = stopped_report(
                    where, index, stable_index, message, outcome=outcome, step=step, exit_code=code
                )
                with contextlib.suppress(OSError):
                    write(report)
            fail(message, code)

        try:
            if stable and (nightly or all_available):
                raise ProjectConfigError("--stable takes no nightlies: drop --nightly")
            if nightly and all_available:
                raise ProjectConfigError("use either --nightly or --all-available")
            if history_url is not None and "{when}" not in history_url:
                raise ProjectConfigError("--history-url must contain {when}")
            project_dir, pytest_args = _split_positionals(list(args or []))
            if not project_dir.is_dir():
                raise ProjectConfigError(f"{project_dir} is not a directory")
            options = TestOptions(
                project_dir=project_dir,
                index_url=index,
                stable_index_url=stable_index,
                nightly=_csv(nightly) if nightly else None,
                all_available=all_available,
                stable_only=stable,
                extras=_csv(extra),
                groups=_csv(group),
                pytest_args=pytest_args,
                bisect=bisect,
                allow_missing=allow_missing,
                allow_none=allow_no_nightlies,
                python=python,
                uv=uv,
                workdir=workdir,
                keep=keep,
                history_url=history_url,
                max_builds=max_builds,
                timeout=timeout,
            )
            tester = NightlyTester(options, log=lambda line: typer.echo(line, err=True))
            report = tester.run()
        except InstallFailed as exc:
            stop(exc.message, EXIT_INSTALL, "install-error")
        except NightwheelsError as exc:
            stop(exc.message, EXIT_USAGE)
        except OSError as exc:
            stop(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)
        for line in summary_lines(report):
            typer.echo(line)
        write(report)
        raise typer.Exit(report.exit_code)

    @app.command("report")
    def report_command(
        report_file: Path | None = typer.Argument(
            None,
            metavar="REPORT",
            show_default=False,
            help="the result nightwheels test --save wrote",
        ),
        github: str | None = typer.Option(
            None, "--github", metavar="OWNER/REPO", help="keep a tracking issue there"
        ),
        key: str = typer.Option(
            "nightly", "--key", help="one tracking issue per key (e.g. per job of a matrix)"
        ),
        label: list[str] = typer.Option([], "--label", help="labels for the tracking issue"),
        assignee: list[str] = typer.Option(
            [], "--assignee", help="assign the tracking issue to these GitHub users"
        ),
        github_api: str = typer.Option(
            "https://api.github.com", "--github-api", envvar="GITHUB_API_URL", help="GitHub API URL"
        ),
        author: str | None = typer.Option(
            None, "--author", help="the bot login (default: whoever the token is)"
        ),
        markdown_file: Path | None = typer.Option(None, "--markdown", help="write markdown here"),
        server: str | None = typer.Option(
            None, "--server", help="post to this nightwheels server's compatibility record"
        ),
        repository: str | None = typer.Option(
            None, "--repository", envvar="GITHUB_REPOSITORY", help="the downstream repository"
        ),
        report_log: Path | None = typer.Option(
            None, "--report-log", help="instead of REPORT.json: a pytest --report-log file"
        ),
        junit_xml: Path | None = typer.Option(
            None, "--junit-xml", help="instead of REPORT.json: JUnit XML from the test run"
        ),
        python: str | None = typer.Option(
            None, "--python", help="with --report-log/--junit-xml: the tested environment's python"
        ),
        index: str | None = typer.Option(
            None, "--index", envvar="NIGHTWHEELS_INDEX_URL", help="the nightly index tested"
        ),
        project: str | None = typer.Option(
            None, "--project", help="the downstream project (default: pyproject.toml's name)"
        ),
        save: Path | None = typer.Option(
            None, "--save", help="write the report read from --report-log/--junit-xml here"
        ),
    ) -> None:
        """Report a saved result: tracking issue, markdown file, compatibility record.

        Run it in a separate step from the tests, so the code under test never holds
        the issue-writing token (GITHUB_TOKEN) or the server token (NIGHTWHEELS_TOKEN, or
        trusted publishing in a GitHub Actions job with id-token: write).
        A missing REPORT.json (the test step stopped before writing it) is reported as
        "could not run", with a link to this run.
        """
        from nightwheels.nightly_testing import markdown
        from nightwheels.nightly_testing.compat_client import post_result, report_token
        from nightwheels.nightly_testing.known_bad import fetch_known_bad, server_of
        from nightwheels.nightly_testing.results import load_report, missing_report
        from nightwheels.nightly_testing.tracking import update_tracking_issue
        from nightwheels.trackers.github_issues import GitHubIssues

        if not (github or markdown_file or server or save):
            fail("nothing to do: give --github, --markdown, --server and/or --save", EXIT_USAGE)
        try:
            if report_log is not None or junit_xml is not None:
                if report_file is not None:
                    raise ProjectConfigError(
                        "give REPORT.json or --report-log/--junit-xml, not both"
                    )
                report = _external_report(
                    report_log, junit_xml, python, index, project, repository or github
                )
                if save is not None:
                    report.save(save)
            elif report_file is None:
                raise ProjectConfigError("give REPORT.json, --report-log or --junit-xml")
            elif report_file.exists():
                report = load_report(report_file)
            else:
                report = missing_report(report_file, repository or github)
                typer.echo(f"no report at {report_file}: reporting that the tests could not run")
            known = []
            index_server = server or server_of(report.index_url)
            if index_server and (github or markdown_file) and report.outcome != "passed":
                known = fetch_known_bad(index_server, report)
            for k in known:
                typer.echo(
                    f"known upstream regression: {k.name} {k.version} ({k.link or k.reason})"
                )
            if markdown_file is not None:
                markdown_file.write_text(markdown.render(report, known=known), encoding="utf-8")
                typer.echo(f"wrote {markdown_file}")
            if github:
                client = GitHubIssues(github, os.environ.get("GITHUB_TOKEN", ""), github_api)
                try:
                    labels = _csv(label) or None
                    done = update_tracking_issue(
                        client,
                        report,
                        key=key,
                        author=author,
                        labels=labels,
                        assignees=_csv(assignee) or None,
                        known=known,
                    )
                finally:
                    client.close_connection()
                messages = {
                    "created": f"opened tracking issue #{done.number}",
                    "updated": f"tracking issue #{done.number} still failing the same way: "
                    "description updated",
                    "changed": f"tracking issue #{done.number}: the failures changed: "
                    "description updated, commented",
                    "closed": f"tests pass: closed tracking issue #{done.number}",
                    "kept": f"tests pass, but with no nightly: tracking issue #{done.number} "
                    "stays open",
                    "none": "tests pass and no tracking issue is open: nothing to do",
                }
                typer.echo(messages[done.action] + (f" {done.url}" if done.url else ""))
            if server and not any(n.sha256 for n in report.nightlies):
                typer.echo(f"nothing to record on {server}: the report names no nightly")
            elif server:
                token = report_token(server, report.project)
                answer = post_result(server, token, report, repository)
                typer.echo(
                    f"recorded {len(answer.get('recorded', []))} nightlies on {server}"
                    + (
                        f" (not files of that index: {', '.join(answer['ignored'])})"
                        if answer.get("ignored")
                        else ""
                    )
                )
        except ProjectConfigError as exc:
            fail(exc.message, EXIT_USAGE)
        except NightwheelsError as exc:
            fail(exc.message, EXIT_ERROR)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)


def standalone_app() -> typer.Typer:
    """``test`` and ``report`` alone (``nightwheels test`` runs without the other commands)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    return app
