"""``nightwheels test`` (run the tests against nightlies) and ``nightwheels report``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from nightwheels.cli.exits import EXIT_ERROR, EXIT_INSTALL, EXIT_USAGE, fail
from nightwheels.errors import InstallFailed, NightwheelsError, ProjectConfigError


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


def register(app: typer.Typer) -> None:
    @app.command(
        "test",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    def test(
        args: list[str] = typer.Argument(
            None, metavar="[PROJECT_DIR] [-- PYTEST_ARGS]", show_default=False
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
        environment could not be installed.
        """
        from nightwheels.nightly_testing import markdown
        from nightwheels.nightly_testing.runner import NightlyTester, TestOptions
        from nightwheels.nightly_testing.summary import summary_lines

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
            fail(exc.message, EXIT_INSTALL)
        except NightwheelsError as exc:
            fail(exc.message, EXIT_USAGE)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)
        for line in summary_lines(report):
            typer.echo(line)
        if save is not None:
            report.save(save)
        if markdown_file is not None:
            markdown_file.write_text(markdown.render(report), encoding="utf-8")
        raise typer.Exit(report.exit_code)

    @app.command("report")
    def report_command(
        report_file: Path = typer.Argument(..., metavar="REPORT.json"),
        github: str | None = typer.Option(
            None, "--github", metavar="OWNER/REPO", help="keep a tracking issue there"
        ),
        key: str = typer.Option(
            "nightly", "--key", help="one tracking issue per key (e.g. per job of a matrix)"
        ),
        label: list[str] = typer.Option([], "--label", help="labels for the tracking issue"),
        github_api: str = typer.Option(
            "https://api.github.com", "--github-api", envvar="GITHUB_API_URL"
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
    ) -> None:
        """Report a saved result: tracking issue, markdown file, compatibility record.

        Run it in a separate step from the tests, so the code under test never holds
        the issue-writing token (GITHUB_TOKEN) or the server token (NIGHTWHEELS_TOKEN).
        """
        from nightwheels.nightly_testing import markdown
        from nightwheels.nightly_testing.compat_client import post_result
        from nightwheels.nightly_testing.results import load_report
        from nightwheels.nightly_testing.tracking import update_tracking_issue
        from nightwheels.trackers.github_issues import GitHubIssues

        if not (github or markdown_file or server):
            fail("nothing to do: give --github, --markdown and/or --server", EXIT_USAGE)
        try:
            report = load_report(report_file)
            if markdown_file is not None:
                markdown_file.write_text(markdown.render(report), encoding="utf-8")
                typer.echo(f"wrote {markdown_file}")
            if github:
                client = GitHubIssues(github, os.environ.get("GITHUB_TOKEN", ""), github_api)
                try:
                    labels = _csv(label) or None
                    done = update_tracking_issue(
                        client, report, key=key, author=author, labels=labels
                    )
                finally:
                    client.close_connection()
                messages = {
                    "created": f"opened tracking issue #{done.number}",
                    "updated": f"tracking issue #{done.number} still failing: commented",
                    "closed": f"tests pass: closed tracking issue #{done.number}",
                    "none": "tests pass and no tracking issue is open: nothing to do",
                }
                typer.echo(messages[done.action] + (f" {done.url}" if done.url else ""))
            if server:
                answer = post_result(
                    server, os.environ.get("NIGHTWHEELS_TOKEN", ""), report, repository
                )
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
