"""``nightwheels test`` and ``nightwheels report`` end to end, with real parts only.

Nightlies are uploaded to a live nightwheels; the "stable" releases (and pytest, rebuilt
from this environment) are served by a static PEP 503 index on another loopback port; uv
builds real environments and pytest runs the sample downstream projects' tests. The
sample world is described in ``tests/support/nightly_world.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.clients import BIN, clean_env, run
from tests.support.github_api import FakeGitHub
from tests.support.nightly_world import (
    BAD_COMET,
    GOOD_COMET,
    World,
    build_world,
    upload,
)
from tests.support.wheels import make_wheel


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("nightly"))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def failing(world: World) -> tuple[dict, Path, str]:  # type: ignore[type-arg]
    """One bisecting run with every nightly, shared by the tests that read its report."""
    saved = world.tmp / "failing.json"
    md = world.tmp / "failing.md"
    result = world.test(
        "--extra",
        "test",
        "--group",
        "test",
        "--bisect",
        "--save",
        str(saved),
        "--markdown",
        str(md),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return json.loads(saved.read_text()), md, result.stdout + result.stderr


# --- running the tests --------------------------------------------------------------------


def test_fails_with_nightlies_and_records_each_file(world: World, failing) -> None:  # type: ignore[no-untyped-def]
    report, _md, output = failing
    assert report["outcome"] == "failed" and report["exit_code"] == 1
    nightlies = {n["name"]: n for n in report["nightlies"]}
    # The direct dependencies (and the test group) that have nightlies; zeta is not one.
    assert sorted(nightlies) == ["astro", "bolide", "comet"]
    comet = nightlies["comet"]
    assert comet["version"] == "2.0.0.dev20260104"
    assert comet["stable_version"] == "1.0"
    listed = {f["filename"]: f for f in world.nightly_files("comet")}
    entry = listed[comet["filename"]]
    assert comet["sha256"] == entry["hashes"]["sha256"]
    assert comet["url"] == str(httpx.URL(world.server.simple_url + "comet/").join(entry["url"]))
    assert comet["upload_time"].replace("+00:00", "Z").startswith(entry["upload-time"][:19])
    # Everything else came from the stable index, even what the nightly index also hosts.
    assert report["environment"]["zeta"] == "1.0"
    assert report["environment"]["comet"] == "2.0.0.dev20260104"
    failures = {f["nodeid"]: f for f in report["failures"]}
    assert "tests/test_api.py::test_greet[a]" in failures
    assert "has no attribute 'greet'" in failures["tests/test_api.py::test_greet[b]"]["message"]
    assert failures["tests/test_import.py"]["when"] == "collect"
    assert "cannot import name 'greet'" in failures["tests/test_import.py"]["message"]
    assert report["counts"]["passed"] == 2  # test_astro, test_bolide
    assert "comet     2.0.0.dev20260104" in output or "comet 2.0.0.dev20260104" in output


def test_passes_with_stable_releases(world: World) -> None:
    result = world.test("--extra", "test", "--group", "test", "--stable")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no nightlies: stable releases only" in result.stdout
    assert "result: PASSED (exit 0)" in result.stdout


def test_compatible_nightlies_pass(world: World, tmp_path: Path) -> None:
    saved = tmp_path / "ok.json"
    # --python: the interpreter is asked for its tags (otherwise nightwheels' own are used).
    result = world.test(
        "--group", "test", "--nightly", "astro,bolide", "--save", str(saved),
        "--python", sys.executable,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(saved.read_text())
    assert [n["name"] for n in report["nightlies"]] == ["astro", "bolide"]
    assert report["environment"]["comet"] == "1.0"
    assert report["counts"]["failed"] == 0 and report["counts"]["passed"] == 7


def test_bisect_names_the_culprit_and_its_first_bad_build(failing) -> None:  # type: ignore[no-untyped-def]
    report, _md, output = failing
    bisect = report["bisect"]
    assert bisect["baseline"] == "passed"
    assert bisect["culprits"] == ["comet"]
    n = 3  # nightlies
    assert bisect["package_runs"] <= math.ceil(math.log2(n)) + 2
    (builds,) = bisect["builds"]
    assert builds["first_bad"]["version"] == "2.0.0.dev20260103"
    assert builds["last_good"]["version"] == "2.0.0.dev20260102"
    assert builds["builds_considered"] == 4
    assert builds["runs"] <= math.ceil(math.log2(4)) + 1
    assert "bisect: culprit comet" in output
    assert "first bad 2.0.0.dev20260103" in output


def test_dependency_confusion_needs_an_explicit_opt_in(world: World, tmp_path: Path) -> None:
    # --all-available takes transitive dependencies too: zeta's nightly is then installed
    # (the user asked for it) and breaks astro; by default it never is (see above).
    saved = tmp_path / "all.json"
    result = world.test("--group", "test", "--all-available", "--save", str(saved))
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(saved.read_text())
    assert "zeta" in [n["name"] for n in report["nightlies"]]
    assert report["environment"]["zeta"] == "9.0.0.dev0"
    assert any("zeta came from the nightly index" in f["message"] for f in report["failures"])


def test_a_platform_without_a_nightly_is_reported_not_replaced(
    world: World, tmp_path: Path
) -> None:
    saved = tmp_path / "missing.json"
    result = world.test(
        "--group", "test", "--extra", "platform", "--nightly", "delta", "--save", str(saved)
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no wheel for this platform" in result.stderr
    assert "cp311-cp311-win_amd64" in result.stderr
    report = json.loads(saved.read_text())
    assert report["outcome"] == "install-error"
    assert report["missing"][0]["name"] == "delta"

    allowed = world.test(
        "--group", "test", "--extra", "platform", "--nightly", "delta,bolide", "--allow-missing",
        "--save", str(saved),
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "NO NIGHTLY for delta: no wheel for this platform" in allowed.stdout
    report = json.loads(saved.read_text())
    assert report["environment"]["delta"] == "1.0"
    assert [m["name"] for m in report["missing"]] == ["delta"]


def test_an_uninstallable_nightly_exits_3_with_the_resolver_message(
    world: World, tmp_path: Path
) -> None:
    saved = tmp_path / "broken.json"
    result = world.test(
        "--group", "test", "--extra", "broken", "--nightly", "epsilon", "--save", str(saved)
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "does-not-exist" in result.stdout
    report = json.loads(saved.read_text())
    assert report["outcome"] == "install-error" and "does-not-exist" in report["install_error"]


def test_pytest_arguments_pass_through(world: World) -> None:
    result = world.test("--group", "test", "--", "-k", "astro or bolide", "tests/test_api.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests: 0 failed, 0 errors, 2 passed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extra", "nope"], "has no extra 'nope'"),
        (["--group", "nope"], "has no dependency group 'nope'"),
        (["--nightly", "not a name!"], "is not a valid project name"),
        (["--stable", "--nightly", "comet"], "--stable takes no nightlies"),
        (["--history-url", "http://x/"], "must contain {when}"),
        (["--nightly", "downstream"], "the project under test itself"),
        (["--index", "ftp://example.invalid/simple/"], "is not an http(s) index URL"),
    ],
)
def test_usage_errors_exit_2(world: World, args: list[str], message: str) -> None:
    result = world.test(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_not_a_project_exits_2(world: World, tmp_path: Path) -> None:
    result = world.test(project=tmp_path)
    assert result.returncode == 2
    assert "has no pyproject.toml" in result.stderr


def test_unreachable_nightly_index_exits_3(world: World, tmp_path: Path) -> None:
    from tests.support.server import free_port

    result = run(
        [sys.executable, "-m", "nightwheels", "test", str(world.downstream), "--index",
         f"http://127.0.0.1:{free_port()}/simple/", "--stable-index", world.stable.url],
        env=clean_env(UV_CACHE_DIR=str(world.uv_cache)),
        check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot read" in result.stderr


def test_same_named_nightlies_bisect_through_the_history(world: World, tmp_path: Path) -> None:
    """``nova`` re-uploads ``3.0.0.dev0`` every night: only the index's history has the old ones."""
    uploaded = []
    for i, source in enumerate([GOOD_COMET, GOOD_COMET, BAD_COMET]):
        wheel = make_wheel(
            tmp_path / str(i), "nova", "3.0.0.dev0", module_source=f"{source}BUILD = {i}\n"
        )
        upload(world.server, world.token, wheel)
        uploaded.append(hashlib.sha256(wheel.read_bytes()).hexdigest())
    files = world.nightly_files("nova")
    assert len(files) == 1  # the live page lists only the newest build
    saved = tmp_path / "nova.json"
    result = world.test(
        "--group", "test", "--bisect", "--save", str(saved), project=world.downstream2
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (builds,) = json.loads(saved.read_text())["bisect"]["builds"]
    assert builds["first_bad"]["sha256"] == files[0]["hashes"]["sha256"]
    moment = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    as_of = httpx.get(f"{world.server.url}/as-of/{moment}/simple/")
    if as_of.status_code == 404:  # no history view on this index: said, not guessed
        assert builds["last_good"] is None
        assert "no earlier build of nova is retained" in builds["note"]
    else:
        assert builds["builds_considered"] == 3
        assert builds["last_good"]["sha256"] == uploaded[1]
        assert builds["first_bad"]["sha256"] == uploaded[2]


# --- reporting ----------------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    fake.issues["sci/downstream"] = []
    try:
        yield fake
    finally:
        fake.stop()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def report_cli(*args: str, github: FakeGitHub | None = None, **env: str) -> CliResult:
    """``nightwheels report ARGS``, in process (no subprocess start-up per call)."""
    from typer.testing import CliRunner

    from nightwheels.cli.app import app

    variables: dict[str, str | None] = dict.fromkeys(
        ("GITHUB_TOKEN", "GITHUB_API_URL", "GITHUB_REPOSITORY", "NIGHTWHEELS_TOKEN")
    )
    if github is not None:
        variables.update(GITHUB_TOKEN=github.token, GITHUB_API_URL=github.url)
    variables.update(env)
    result = CliRunner().invoke(app, ["report", *args], env=variables)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def _passing_report(failing_report: dict, tmp_path: Path) -> Path:  # type: ignore[type-arg]
    data = dict(failing_report)
    data.update(outcome="passed", exit_code=0, failures=[], bisect=None)
    data["counts"] = {**data["counts"], "failed": 0, "errors": 0, "passed": 7}
    path = tmp_path / "passing.json"
    path.write_text(json.dumps(data))
    return path


def test_tracking_issue_lifecycle(failing, github: FakeGitHub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, _md, _out = failing
    saved = tmp_path / "failing.json"
    saved.write_text(json.dumps(report))
    repo = "sci/downstream"
    # Someone else's issue quoting the marker is never taken over.
    github.add_issue(
        repo, title="copy", body="<!-- nightwheels-tracking-issue: nightly -->", user="mallory"
    )

    first = report_cli(str(saved), "--github", repo, github=github)
    assert first.returncode == 0, first.stderr
    assert "opened tracking issue #2" in first.stdout
    issue = github.issue(repo, 2)
    assert issue["user"]["login"] == "nightly-bot"
    assert issue["title"] == "Nightly tests of downstream fail with comet 2.0.0.dev20260103"
    assert "<!-- nightwheels-tracking-issue: nightly -->" in issue["body"]
    assert "first bad build `2.0.0.dev20260103`" in issue["body"]
    assert "last good build `2.0.0.dev20260102`" in issue["body"]
    assert "test_greet[a, b, c]" in issue["body"] and "(3 parametrisations)" in issue["body"]

    again = report_cli(str(saved), "--github", repo, github=github)
    assert again.returncode == 0, again.stderr
    assert "tracking issue #2 still failing the same way" in again.stdout
    assert len(github.issues[repo]) == 2  # not duplicated
    assert 2 not in github.comments  # nothing changed: no comment

    passing = _passing_report(report, tmp_path)
    closed = report_cli(str(passing), "--github", repo, github=github)
    assert closed.returncode == 0, closed.stderr
    assert github.issue(repo, 2)["state"] == "closed"
    assert github.issue(repo, 2)["state_reason"] == "completed"
    assert "pass again" in github.comments[2][-1]
    assert github.issue(repo, 1)["state"] == "open"  # mallory's is untouched

    nothing = report_cli(str(passing), "--github", repo, github=github)
    assert "nothing to do" in nothing.stdout
    methods = [(c.method, c.path) for c in github.calls]
    assert ("POST", f"/repos/{repo}/issues") in methods
    assert methods.count(("POST", f"/repos/{repo}/issues")) == 1
    assert all(
        c.query.get("state") == "open"
        for c in github.calls
        if c.method == "GET" and "issues" in c.path
    )


def test_actions_token_and_pagination(failing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A workflow's GITHUB_TOKEN cannot read /user: the author is github-actions[bot]."""
    report, _md, _out = failing
    fake = FakeGitHub(login=None).start()
    try:
        repo = "sci/big"
        fake.issues[repo] = []
        for i in range(150):  # more than one page of open issues
            fake.add_issue(repo, title=f"issue {i}", body="", user="someone")
        saved = tmp_path / "r.json"
        saved.write_text(json.dumps(report))
        out = report_cli(str(saved), "--github", repo, "--key", "py3.11", github=fake)
        assert "opened tracking issue #151" in out.stdout, out.stderr
        fake.issues[repo].reverse()  # the tracking issue is now on the last page
        out = report_cli(str(saved), "--github", repo, "--key", "py3.11", github=fake)
        assert "tracking issue #151 still failing the same way" in out.stdout, out.stderr
        assert fake.issue(repo, 151)["user"]["login"] == "github-actions[bot]"
        assert any(c.query.get("page") == "2" for c in fake.calls)
        # Another key is another issue.
        out = report_cli(str(saved), "--github", repo, "--key", "py3.12", github=fake)
        assert "opened tracking issue #152" in out.stdout
    finally:
        fake.stop()


def test_long_reports_fit_githubs_limit(failing, github: FakeGitHub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, _md, _out = failing
    failures = [
        {"nodeid": f"tests/test_big.py::test_case[{i}]", "when": "call", "message": "boom " * 20}
        for i in range(3000)
    ] + [
        {"nodeid": f"tests/test_m{i}.py::test_x", "when": "call", "message": f"error {i} " * 30}
        for i in range(2000)
    ]
    big = {**report, "failures": failures}
    saved = tmp_path / "big.json"
    saved.write_text(json.dumps(big))
    out = report_cli(str(saved), "--github", "sci/downstream", github=github)
    assert out.returncode == 0, out.stderr
    body = github.issue("sci/downstream", 1)["body"]
    assert len(body) <= 65_536
    assert "(3000 parametrisations)" in body
    assert "more failing tests not shown" in body


def test_reporter_errors(failing, github: FakeGitHub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, _md, _out = failing
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(report))
    bad_token = report_cli(
        str(saved), "--github", "sci/downstream", github=github, GITHUB_TOKEN="x"
    )
    assert bad_token.returncode == 1
    assert "401" in bad_token.stderr and "token is not valid" in bad_token.stderr
    no_repo = report_cli(str(saved), "--github", "sci/nothing", github=github)
    assert no_repo.returncode == 1 and "404" in no_repo.stderr
    assert report_cli(str(saved), "--github", "not-a-repo", github=github).returncode == 2
    assert report_cli(str(saved)).returncode == 2  # nothing to do
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}")
    out = report_cli(str(garbage), "--markdown", str(tmp_path / "x.md"))
    assert out.returncode == 2 and "not a nightwheels test report" in out.stderr
    no_token = report_cli(str(saved), "--github", "sci/downstream", GITHUB_API_URL=github.url)
    assert no_token.returncode == 2 and "GITHUB_TOKEN" in no_token.stderr


def test_markdown_report(failing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, md, _out = failing
    text = md.read_text()
    assert "| comet | [`2.0.0.dev20260104`]" in text
    assert "collection error: ImportError: cannot import name 'greet'" in text
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(report))
    out_md = tmp_path / "out.md"
    result = report_cli(str(saved), "--markdown", str(out_md))
    assert result.returncode == 0
    assert out_md.read_text() == text


def test_compatibility_record(world: World, failing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, _md, _out = failing
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(report))
    server = world.server
    server.create_user("ci")
    reporter = server.cli(
        "token", "create", "--user", "ci", "--permission", "report", "--project", "downstream"
    ).stdout.strip()
    post = report_cli(
        str(saved), "--server", server.url, "--repository", "sci/downstream",
        NIGHTWHEELS_TOKEN=reporter,
    )  # fmt: skip
    assert post.returncode == 0, post.stderr
    assert "recorded 3 nightlies" in post.stdout

    view = httpx.get(f"{server.url}/api/v1/compat/upstream/comet").json()
    assert view["failing"] == 1 and view["passing"] == 0
    (row,) = view["results"]
    assert row["downstream"] == "downstream" and row["repository"] == "sci/downstream"
    assert row["culprit"] is True and row["outcome"] == "failed"
    assert row["version"] == "2.0.0.dev20260104"
    assert row["sha256"] == next(n["sha256"] for n in report["nightlies"] if n["name"] == "comet")
    astro = httpx.get(f"{server.url}/api/v1/compat/upstream/astro").json()
    assert astro["results"][0]["culprit"] is False

    # A later passing run becomes the latest result for that downstream.
    passing = _passing_report(report, tmp_path)
    assert (
        report_cli(str(passing), "--server", server.url, NIGHTWHEELS_TOKEN=reporter).returncode == 0
    )
    view = httpx.get(f"{server.url}/api/v1/compat/upstream/comet").json()
    assert view["passing"] == 1 and view["failing"] == 0
    history = httpx.get(f"{server.url}/api/v1/compat/downstream/downstream").json()
    assert [r["outcome"] for r in history["runs"]] == ["passed", "failed"]

    # Every outcome class can be recorded: a run with nightlies that could not run.
    stopped = tmp_path / "stopped.json"
    stopped.write_text(
        json.dumps({**report, "outcome": "could-not-run", "exit_code": 4, "step": "tests",
                    "error": "pytest exit 4", "failures": [], "bisect": None})
    )  # fmt: skip
    assert (
        report_cli(str(stopped), "--server", server.url, NIGHTWHEELS_TOKEN=reporter).returncode == 0
    )
    history = httpx.get(f"{server.url}/api/v1/compat/downstream/downstream").json()
    assert history["runs"][0]["outcome"] == "could-not-run"

    # Who may post what.
    assert report_cli(str(saved), "--server", server.url).returncode == 2  # no token
    denied = report_cli(str(saved), "--server", server.url, NIGHTWHEELS_TOKEN=world.token)
    assert denied.returncode == 1 and "403" in denied.stderr  # an upload token
    other = server.cli(
        "token", "create", "--user", "ci", "--permission", "report", "--project", "other"
    ).stdout.strip()
    denied = report_cli(str(saved), "--server", server.url, NIGHTWHEELS_TOKEN=other)
    assert denied.returncode == 1 and "may not report results for 'downstream'" in denied.stderr
    forged = json.loads(saved.read_text())
    for n in forged["nightlies"]:
        n["sha256"] = "0" * 64
    saved.write_text(json.dumps(forged))
    refused = report_cli(str(saved), "--server", server.url, NIGHTWHEELS_TOKEN=reporter)
    assert refused.returncode == 1 and "none of the reported nightlies" in refused.stderr
    anywhere = server.cli("token", "create", "--user", "ci", "--permission", "report")
    assert "report on any project" in anywhere.stderr
    saved.write_text(json.dumps(report))
    assert (
        report_cli(
            str(saved), "--server", server.url, NIGHTWHEELS_TOKEN=anywhere.stdout.strip()
        ).returncode
        == 0
    )
    bogus = server.cli("token", "create", "--user", "ci", "--permission", "bogus", check=False)
    assert bogus.returncode == 1 and "unknown token permission(s): bogus" in bogus.stderr
    unscoped = server.cli("token", "create", "--user", "ci", check=False)
    assert unscoped.returncode == 1 and "scoped to at least one project" in unscoped.stderr
    anonymous = httpx.post(f"{server.url}/api/v1/compat/results", json={})
    assert anonymous.status_code == 401
    events = server.cli("audit", "--json")
    assert "compat.report" in events.stdout


# --- issue 15: outcomes, regressions, reports for every outcome ------------------------------

QUASAR_GOOD = "def count(items):\n    return len(items)\n\ndef legacy():\n    return 1\n"
QUASAR_OFF_BY_ONE = "def count(items):\n    return len(items) + 1\n\ndef legacy():\n    return 1\n"
QUASAR_NO_LEGACY = "def count(items):\n    return len(items) + 1\n"
# An off-by-one in the second build, a removed function in the third (four builds: the
# fewest that show both, each uv environment costs a second or more).
QUASAR_BUILDS = [QUASAR_GOOD, QUASAR_OFF_BY_ONE, QUASAR_NO_LEGACY, QUASAR_NO_LEGACY]
PYPROJECT = """
[build-system]
requires = []
build-backend = "tinybackend"
backend-path = ["_build"]

[project]
name = "{name}"
{version}
dependencies = {deps}
"""


@dataclass
class More:
    regressions: Path  # downstream4: quasar, two regressions
    plugin: Path  # downstream5: its pytest configuration loads a plugin that cannot import
    plain: Path  # downstream6: no dependency with a nightly, a dynamic version, an xfail


@pytest.fixture(scope="module")
def more(world: World) -> More:
    from tests.support.nightly_world import write_project

    token = world.server.token("bot", "quasar")
    for i, source in enumerate(QUASAR_BUILDS, 1):
        wheel = make_wheel(
            world.tmp / "quasar" / str(i), "quasar", f"1.1.0.dev{i}", module_source=source
        )
        upload(world.server, token, wheel)
    world.stable.add(
        make_wheel(world.tmp / "quasar-stable", "quasar", "1.0", module_source=QUASAR_GOOD)
    )

    def pyproject(name: str, deps: str, version: str = 'version = "0.1"') -> str:
        return PYPROJECT.format(name=name, deps=deps, version=version)

    regressions = write_project(
        world.tmp / "downstream4",
        "downstream4",
        pyproject("downstream4", '["quasar", "pytest"]'),
        {
            "src/downstream4/__init__.py": "",
            "tests/test_q.py": """
            import quasar

            def test_count():
                assert quasar.count([1, 2]) == 2

            def test_legacy():
                assert quasar.legacy() == 1

            def test_fine():
                pass
            """,
        },
    )
    plugin = write_project(
        world.tmp / "downstream5",
        "downstream5",
        pyproject("downstream5", '["comet", "pytest"]')
        + '\n[tool.pytest.ini_options]\naddopts = "-p broken_plugin"\n',
        {
            "src/downstream5/__init__.py": "",
            "broken_plugin.py": "import no_such_module_anywhere\n",
            "tests/test_it.py": "def test_it():\n    pass\n",
        },
    )
    plain = write_project(
        world.tmp / "downstream6",
        "downstream6",
        pyproject("downstream6", '["pytest"]', 'dynamic = ["version"]'),
        {
            "src/downstream6/__init__.py": "",
            "tests/test_it.py": """
            import pytest

            def test_it():
                pass

            @pytest.mark.xfail(reason="known")
            def test_known():
                assert False
            """,
        },
    )
    # A setuptools-scm-like backend: the version is not in pyproject.toml.
    backend = plain / "_build" / "tinybackend.py"
    backend.write_text(
        backend.read_text().replace(
            'data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]',
            'data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]\n'
            '    data["version"] = "0.7.dev3+g1234abc"',
        )
    )
    return More(regressions, plugin, plain)


def _trial_lines(stderr: str) -> list[str]:
    """The lines bisection prints, one per pytest run."""
    return [line for line in stderr.splitlines() if re.match(r"^  run \d+: ", line)]


def test_a_plugin_that_cannot_load_could_not_run_and_no_culprit_is_named(
    world: World, more: More, github: FakeGitHub, tmp_path: Path
) -> None:
    saved = tmp_path / "plugin.json"
    result = world.test("--bisect", "--save", str(saved), project=more.plugin)
    assert result.returncode == 4, result.stdout + result.stderr
    report = json.loads(saved.read_text())
    assert report["outcome"] == "could-not-run" and report["step"] == "tests"
    assert "No module named 'no_such_module_anywhere'" in report["error"]
    assert "result: COULD NOT RUN (exit 4)" in result.stdout
    assert "No module named 'no_such_module_anywhere'" in result.stdout
    bisect = report["bisect"]
    assert bisect["baseline"] == "could-not-run"
    assert bisect["culprits"] == [] and bisect["builds"] == []
    assert "cannot run with the stable releases either" in bisect["notes"][0]

    # The tracking issue says so, with the error, and blames no nightly.
    out = report_cli(str(saved), "--github", "sci/downstream", github=github)
    assert out.returncode == 0, out.stderr
    issue = github.issue("sci/downstream", 1)
    assert issue["title"] == "Nightly tests of downstream5 could not run (running pytest)"
    assert "No module named 'no_such_module_anywhere'" in issue["body"]
    assert "comet" not in issue["title"]

    stable = world.test("--stable", project=more.plugin)
    assert stable.returncode == 4, stable.stdout + stable.stderr


def test_a_conftest_a_nightly_broke_names_the_right_last_good_build(
    world: World, tmp_path: Path
) -> None:
    saved = tmp_path / "conftest.json"
    project = world.tmp / "downstream3"
    result = world.test("--bisect", "--save", str(saved), project=project)
    assert result.returncode == 4, result.stdout + result.stderr  # pytest: usage error (4)
    report = json.loads(saved.read_text())
    assert report["outcome"] == "could-not-run"
    assert "cannot import name 'greet'" in report["error"]
    (failure,) = report["failures"]
    assert failure["nodeid"] == "tests/conftest.py" and failure["when"] == "collect"
    bisect = report["bisect"]
    assert bisect["baseline"] == "passed" and bisect["culprits"] == ["comet"]
    (builds,) = bisect["builds"]
    assert builds["first_bad"]["version"] == "2.0.0.dev20260103"
    assert builds["last_good"]["version"] == "2.0.0.dev20260102"
    assert world.test("--stable", project=project).returncode == 0


def test_two_regressions_each_with_its_own_first_bad_build(
    world: World, more: More, github: FakeGitHub, tmp_path: Path
) -> None:
    saved = tmp_path / "two.json"
    result = world.test("--bisect", "--save", str(saved), project=more.regressions)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(saved.read_text())
    bisect = report["bisect"]
    first, second = bisect["regressions"]
    assert first["culprits"] == ["quasar"] and first["tests"] == ["tests/test_q.py::test_count"]
    (b1,) = first["builds"]
    assert (b1["last_good"]["version"], b1["first_bad"]["version"]) == ("1.1.0.dev1", "1.1.0.dev2")
    assert second["tests"] == ["tests/test_q.py::test_legacy"]
    (b2,) = second["builds"]
    assert (b2["last_good"]["version"], b2["first_bad"]["version"]) == ("1.1.0.dev2", "1.1.0.dev3")
    # Every pytest run is counted, and each is printed.
    assert bisect["package_runs"] + bisect["date_runs"] + bisect["confirm_runs"] == len(
        _trial_lines(result.stderr)
    )
    assert "regression 2: quasar breaks tests/test_q.py::test_legacy" in result.stdout

    out = report_cli(str(saved), "--github", "sci/downstream", github=github)
    assert out.returncode == 0, out.stderr
    issue = github.issue("sci/downstream", 1)
    assert issue["title"] == (
        "Nightly tests of downstream4 fail with quasar 1.1.0.dev2 and quasar 1.1.0.dev3"
    )
    assert "Regression 2: **quasar** breaks `tests/test_q.py::test_legacy`" in issue["body"]


def test_the_bisect_with_its_confirmation_stays_within_budget(failing) -> None:  # type: ignore[no-untyped-def]
    report, _md, output = failing
    bisect = report["bisect"]
    (builds,) = bisect["builds"]
    m = builds["builds_considered"]
    assert bisect["date_runs"] + bisect["confirm_runs"] <= math.ceil(math.log2(m)) + 3
    assert bisect["confirm_runs"] == 2  # the full suite on the last good and the first bad build
    runs = bisect["package_runs"] + bisect["date_runs"] + bisect["confirm_runs"]
    assert runs == len(_trial_lines(output))
    # Reused version strings need more than the version to tell builds apart.
    assert re.search(
        r"last good 2\.0\.0\.dev20260102 \(uploaded \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
        r"sha256 [0-9a-f]{12}\), first bad 2\.0\.0\.dev20260103 \(uploaded .* sha256 [0-9a-f]{12}\)",
        output,
    ), output


def test_no_nightlies_found_is_an_error_unless_allowed(
    world: World, more: More, github: FakeGitHub, tmp_path: Path
) -> None:
    saved = tmp_path / "none.json"
    result = world.test("--save", str(saved), project=more.plain)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "lists no nightly of the dependencies (pytest)" in result.stderr
    report = json.loads(saved.read_text())
    assert report["outcome"] == "could-not-run" and report["step"] == "nightlies"
    assert report["exit_code"] == 5

    allowed = tmp_path / "allowed.json"
    ok = world.test("--allow-no-nightlies", "--save", str(allowed), project=more.plain)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "tests: 0 failed, 0 errors, 1 passed, 0 skipped, 1 xfailed, 0 xpassed" in ok.stderr
    passed = json.loads(allowed.read_text())
    assert passed["project_version"] == "0.7.dev3+g1234abc"  # a dynamic version

    # The "no nightlies" run opens an issue; a pass with no nightly does not close it.
    repo = "sci/downstream"
    assert (
        "opened tracking issue #1" in report_cli(str(saved), "--github", repo, github=github).stdout
    )
    kept = report_cli(str(allowed), "--github", repo, github=github)
    assert "stays open" in kept.stdout, kept.stdout
    assert github.issue(repo, 1)["state"] == "open"


@pytest.mark.parametrize(
    ("args", "project", "code", "message"),
    [
        (["--extra", "nope"], None, 2, "has no extra 'nope'"),
        ([], "empty", 2, "has no pyproject.toml"),
        (["--nightly", "astro", "--group", "test", "--", "--no-such-pytest-option"], None, 4,
         "unrecognized arguments: --no-such-pytest-option"),
    ],
)  # fmt: skip
def test_a_run_that_cannot_start_still_writes_its_report(
    world: World, tmp_path: Path, args: list[str], project: str | None, code: int, message: str
) -> None:
    saved = tmp_path / "r.json"
    md = tmp_path / "r.md"
    where = tmp_path if project else None
    result = world.test(*args[:2], "--save", str(saved), "--markdown", str(md), *args[2:],
                        project=where)  # fmt: skip
    assert result.returncode == code, result.stdout + result.stderr
    report = json.loads(saved.read_text())
    assert report["outcome"] == "could-not-run" and report["exit_code"] == code
    assert message in report["error"]
    assert message in md.read_text()


def test_report_files_could_not_run_when_the_test_step_wrote_nothing(
    github: FakeGitHub, tmp_path: Path
) -> None:
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "sci/downstream",
        "GITHUB_RUN_ID": "42",
    }
    out = report_cli(str(tmp_path / "report.json"), "--github", "sci/downstream", github=github,
                     **env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    issue = github.issue("sci/downstream", 1)
    assert issue["title"] == (
        "Nightly tests of downstream could not run (the test job (it wrote no report))"
    )
    assert "https://github.com/sci/downstream/actions/runs/42" in issue["body"]
    assert "report.json does not exist" in issue["body"]


def _failed_report(report: dict, **changes: object) -> dict:  # type: ignore[type-arg]
    data = json.loads(json.dumps(report))
    data.update(changes)
    return data


def test_tracking_issue_key_comments_assignees_and_escaping(
    failing, github: FakeGitHub, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    report, _md, _out = failing
    repo = "sci/downstream"
    path = tmp_path / "r.json"
    evil = "boom @octocat see http://evil.example and www.evil.example"
    data = _failed_report(
        report,
        job_url="https://github.com/sci/downstream/actions/runs/7/job/99",
        run_url="https://github.com/sci/downstream/actions/runs/7",
    )
    data["failures"][0]["message"] = evil
    path.write_text(json.dumps(data))
    first = report_cli(str(path), "--github", repo, "--assignee", "alice", github=github)
    assert "opened tracking issue #1" in first.stdout, first.stderr
    issue = github.issue(repo, 1)
    assert [a["login"] for a in issue["assignees"]] == ["alice"]
    assert "[this job](https://github.com/sci/downstream/actions/runs/7/job/99)" in issue["body"]
    outside_code = re.sub(r"`[^`\n]*`", "", issue["body"])
    assert "boom" in outside_code
    assert "@octocat" not in outside_code and "http://evil" not in outside_code
    assert "www.evil" not in outside_code

    # The same failures again, now with a label: the same issue, updated, no comment.
    again = report_cli(str(path), "--github", repo, "--label", "nightly", github=github)
    assert "still failing the same way" in again.stdout, again.stderr
    assert len(github.issues[repo]) == 1
    assert github.comments.get(1, []) == []
    assert [lab["name"] for lab in github.issue(repo, 1)["labels"]] == ["nightly"]

    # Other failures: the body is replaced and one comment says so.
    changed = _failed_report(data, failures=data["failures"][:1])
    path.write_text(json.dumps(changed))
    out = report_cli(str(path), "--github", repo, "--label", "nightly", github=github)
    assert "the failures changed" in out.stdout, out.stderr
    (comment,) = github.comments[1]
    assert comment.startswith("The failures changed on") and "([job](" in comment


def test_results_from_elsewhere_report_log_junit_and_the_tested_environment(
    world: World, github: FakeGitHub, tmp_path: Path
) -> None:
    """numpy-style CI: the tests ran in their own step; report reads their results."""
    work = tmp_path / "w"
    kept = world.test(
        "--nightly", "comet", "--group", "test", "--keep", "--workdir", str(work),
        "--", "tests/test_import.py",
    )  # fmt: skip
    assert kept.returncode == 1, kept.stdout + kept.stderr
    python = work / "env-1" / "bin" / "python"
    log, junit = tmp_path / "log.jsonl", tmp_path / "junit.xml"
    run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", f"--report-log={log}",
         f"--junit-xml={junit}", "--continue-on-collection-errors"],
        env=clean_env(), cwd=world.downstream, check=False,
    )  # fmt: skip
    repo = "sci/downstream"
    saved = tmp_path / "from-log.json"
    out = report_cli(
        "--report-log", str(log), "--python", str(python), "--index", world.server.simple_url,
        "--project", "downstream", "--save", str(saved), "--github", repo, github=github,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(saved.read_text())
    assert report["outcome"] == "failed"
    (comet,) = report["nightlies"]
    assert comet["name"] == "comet" and comet["version"] == "2.0.0.dev20260104"
    assert comet["sha256"] == next(
        f["hashes"]["sha256"] for f in world.nightly_files("comet")
        if f["filename"] == comet["filename"]
    )  # fmt: skip
    assert report["environment"]["astro"] == "1.0"  # stable: not a nightly
    assert "tests/test_api.py::test_greet[a]" in {f["nodeid"] for f in report["failures"]}
    assert "pytest report log log.jsonl" in github.issue(repo, 1)["body"]

    # JUnit XML, and a nightly installed from the index (no direct_url.json).
    run(
        [str(BIN / "uv"), "pip", "install", "-q", "--python", str(python), "--reinstall",
         "--no-deps", "--index-url", world.server.simple_url, "comet==2.0.0.dev20260103"],
        env=clean_env(UV_CACHE_DIR=str(world.uv_cache)),
    )  # fmt: skip
    out = report_cli(
        "--junit-xml", str(junit), "--python", str(python), "--index", world.server.simple_url,
        "--project", "downstream", "--save", str(saved), github=github,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(saved.read_text())
    assert [n["version"] for n in report["nightlies"]] == ["2.0.0.dev20260103"]
    failures = {f["nodeid"]: f for f in report["failures"]}
    assert "has no attribute 'greet'" in failures["tests/test_api.py::test_greet[b]"]["message"]
    assert report["counts"]["passed"] == 2 and report["outcome"] == "failed"
