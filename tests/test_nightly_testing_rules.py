"""The pure parts of nightly testing: bisection, file choice, pyproject, report log, markdown."""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from nightwheels.errors import ProjectConfigError
from nightwheels.nightly_testing import markdown
from nightwheels.nightly_testing.bisect import find_culprits, find_first_bad
from nightwheels.nightly_testing.environment import Installed, uv_environment
from nightwheels.nightly_testing.index import IndexFile, default_history_template
from nightwheels.nightly_testing.project import read_project
from nightwheels.nightly_testing.pytest_log import parse_report_log
from nightwheels.nightly_testing.results import Bisection, Counts, Failure, Report
from nightwheels.nightly_testing.selection import Missing, Target, choose
from nightwheels.nightly_testing.verify import verify_nightlies

# --- bisection ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 10))
def test_single_culprit_in_at_most_log2_n_plus_2_runs(n: int) -> None:
    names = [f"p{i}" for i in range(n)]
    for culprit in names:
        search = find_culprits(names, lambda s, c=culprit: c in s)
        assert search.culprits == (culprit,)
        assert not search.baseline_fails
        assert len(search.runs) <= math.ceil(math.log2(n)) + 2 if n > 1 else len(search.runs) == 1


@pytest.mark.parametrize("n", range(2, 9))
def test_pair_culprits(n: int) -> None:
    names = [f"p{i}" for i in range(n)]
    for a, b in itertools.combinations(names, 2):
        search = find_culprits(names, lambda s, a=a, b=b: a in s and b in s)
        assert search.culprits == (a, b)
        assert len(search.runs) <= 2 * math.ceil(math.log2(n)) + 2


def test_a_failure_without_nightlies_is_not_blamed_on_them() -> None:
    search = find_culprits(["a", "b", "c"], lambda s: True)
    assert search.baseline_fails and search.culprits == ()
    assert [subset for subset, _ in search.runs] == [frozenset()]


@pytest.mark.parametrize("m", range(1, 12))
def test_first_bad_build(m: int) -> None:
    builds = list(range(m))
    for first_bad in range(m):
        found = find_first_bad(builds, lambda b, f=first_bad: b >= f)
        assert found.first_bad == first_bad
        assert found.last_good == (first_bad - 1 if first_bad > 0 else None)
        assert found.runs <= math.ceil(math.log2(m)) + 1 if m > 1 else found.runs == 0


# --- choosing a nightly file ----------------------------------------------------------------

LINUX = Target(
    "3.11.7",
    (
        Tag("cp311", "cp311", "manylinux_2_17_x86_64"),
        Tag("cp311", "abi3", "manylinux_2_17_x86_64"),
        Tag("py3", "none", "manylinux_2_17_x86_64"),
        Tag("py3", "none", "any"),
    ),
    {},
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def f(filename: str, *, hours: int = 0, yanked: bool = False, requires: str | None = None):  # type: ignore[no-untyped-def]
    from nightwheels.nightly_testing.index import _parse_file

    parsed = _parse_file(
        "http://nightly/simple/x/",
        f"../../files/{filename}",
        filename,
        {"sha256": "a" * 64},
        (T0 + timedelta(hours=hours)).isoformat(),
        requires,
        yanked,
    )
    assert parsed is not None
    return parsed


def test_choose_prefers_newest_dev_build_then_most_specific_tag() -> None:
    files = [
        f("x-2.0.dev1-py3-none-any.whl", hours=1),
        f("x-2.0.dev2-py3-none-any.whl", hours=2),
        f("x-2.0.dev2-cp311-cp311-manylinux_2_17_x86_64.whl", hours=2),
        f("x-2.0.dev2-cp312-cp312-manylinux_2_17_x86_64.whl", hours=2),
        f("x-2.0.dev3-cp311-cp311-win_amd64.whl", hours=3),
        f("x-1.0-py3-none-any.whl"),
        f("x-2.0.dev9-py3-none-any.whl", hours=4, yanked=True),
        f("x-2.0.dev8-py3-none-any.whl", hours=4, requires=">=3.12"),
    ]
    pick = choose(files, LINUX)
    assert isinstance(pick, IndexFile)
    assert pick.filename == "x-2.0.dev2-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert pick.url == "http://nightly/files/x-2.0.dev2-cp311-cp311-manylinux_2_17_x86_64.whl"
    # --exclude-newer on upload times:
    older = choose(files, LINUX, before=T0 + timedelta(hours=1, minutes=30))
    assert isinstance(older, IndexFile) and older.version == Version("2.0.dev1")


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([], "lists no files"),
        (["x-1.0-py3-none-any.whl"], "no dev build (the index has only 1.0)"),
        (["x-2.0.dev1-cp311-cp311-win_amd64.whl"], "no wheel for this platform"),
        (["x-2.0.dev1.tar.gz"], "only source distributions"),
    ],
)
def test_choose_says_why_there_is_no_nightly(files: list[str], reason: str) -> None:
    pick = choose([f(name) for name in files], LINUX)
    assert isinstance(pick, Missing) and reason in pick.reason


def test_choose_requires_python_and_yanked() -> None:
    pick = choose([f("x-2.0.dev1-py3-none-any.whl", requires=">=3.12")], LINUX)
    assert isinstance(pick, Missing) and "no wheel for Python 3.11.7" in pick.reason
    pick = choose([f("x-2.0.dev1-py3-none-any.whl", yanked=True)], LINUX)
    assert isinstance(pick, Missing) and "yanked" in pick.reason


def test_history_view_url() -> None:
    assert default_history_template("http://h/simple/") == "http://h/as-of/{when}/simple/"
    assert default_history_template("https://h/a/simple") == "https://h/a/as-of/{when}/simple/"


# --- verifying an environment ----------------------------------------------------------------


def test_verify_catches_every_substitution() -> None:
    chosen = f("x-2.0.dev2-py3-none-any.whl")
    name = canonicalize_name("x")
    ok = {name: Installed("2.0.dev2", chosen.url)}
    assert verify_nightlies({name: chosen}, ok, "http://nightly/simple/") == []
    problems = verify_nightlies(
        {name: chosen}, {name: Installed("1.0", None)}, "http://nightly/simple/"
    )
    assert any("1.0 is installed, not the nightly" in p for p in problems)
    assert any("installed from an index" in p for p in problems)
    assert verify_nightlies({name: chosen}, {}, "http://nightly/simple/") == [
        "x: the nightly x-2.0.dev2-py3-none-any.whl was not installed"
    ]
    sneaky = {**ok, canonicalize_name("y"): Installed("9.0.dev0", "http://nightly/files/y.whl")}
    assert verify_nightlies({name: chosen}, sneaky, "http://nightly/simple/") == [
        "y: came from the nightly index (http://nightly/files/y.whl) without being asked"
    ]


def test_uv_never_inherits_index_settings_or_tokens() -> None:
    env = uv_environment(
        {
            "PATH": "/bin",
            "UV_INDEX_URL": "http://evil/simple/",
            "UV_EXTRA_INDEX_URL": "http://evil/simple/",
            "UV_INDEX": "http://evil/simple/",
            "UV_FIND_LINKS": "/tmp",
            "UV_PRERELEASE": "allow",
            "PIP_INDEX_URL": "http://evil/simple/",
            "UV_CACHE_DIR": "/cache",
            "GITHUB_TOKEN": "secret",
        }
    )
    assert env == {"PATH": "/bin", "UV_CACHE_DIR": "/cache", "UV_NO_CONFIG": "1"}


# --- reading pyproject.toml ------------------------------------------------------------------


def _project(tmp_path: Path, text: str) -> Path:
    root = tmp_path / uuid.uuid4().hex
    root.mkdir()
    (root / "pyproject.toml").write_text(text)
    return root


def test_extras_and_dependency_groups(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        """
[project]
name = "demo"
version = "1"
dependencies = ["numpy>=1.25", "pandas; python_version < '3'"]
[project.optional-dependencies]
Test_Extra = ["pytest"]
[dependency-groups]
test = ["scipy", {include-group = "Base.Deps"}]
base-deps = ["matplotlib"]
""",
    )
    project = read_project(root)
    names = [r.name for r in project.requirements(["test-extra"], ["test"])]
    assert names == ["numpy", "pandas", "pytest", "scipy", "matplotlib"]
    with pytest.raises(ProjectConfigError, match="no extra 'docs'"):
        project.requirements(["docs"])
    with pytest.raises(ProjectConfigError, match="no dependency group 'lint'"):
        project.requirements(groups=["lint"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project]\nname='d'\n[dependency-groups]\na=[{include-group='b'}]\nb=[{include-group='a'}]\n", "cycle"),
        ("[project]\nname='d'\n[dependency-groups]\na=[{include-group='zz'}]\n", "unknown 'zz'"),
        ("[project]\nname='d'\ndependencies=['not a requirement!!']\n", "not a valid requirement"),
        ("[tool.x]\n", "no [project] table"),
        ("[project\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_pyprojects(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProjectConfigError, match=message.replace("[", r"\[")):
        read_project(_project(tmp_path, text))


# --- pytest's report log ----------------------------------------------------------------------


def test_report_log_counts_and_messages() -> None:
    lines = [
        {"$report_type": "SessionStart", "pytest_version": "8"},
        {"$report_type": "CollectReport", "nodeid": "t/a.py", "outcome": "failed",
         "longrepr": "ImportError while importing\nE   ImportError: no greet"},
        {"$report_type": "TestReport", "nodeid": "t/b.py::ok", "when": "call", "outcome": "passed", "duration": 0.5},
        {"$report_type": "TestReport", "nodeid": "t/b.py::bad", "when": "call", "outcome": "failed",
         "longrepr": {"reprcrash": {"message": "AssertionError: 1 != 2\nmore"}, "reprtraceback": {}}},
        {"$report_type": "TestReport", "nodeid": "t/b.py::fx", "when": "setup", "outcome": "failed",
         "longrepr": {"reprcrash": {"message": "fixture broke"}}},
        {"$report_type": "TestReport", "nodeid": "t/b.py::s", "when": "setup", "outcome": "skipped",
         "longrepr": ["t/b.py", 3, "Skipped: no"]},
        {"$report_type": "TestReport", "nodeid": "t/b.py::xf", "when": "call", "outcome": "skipped", "wasxfail": ""},
        {"$report_type": "TestReport", "nodeid": "t/b.py::xp", "when": "call", "outcome": "passed", "wasxfail": ""},
        {"$report_type": "SessionFinish", "exitstatus": 1},
    ]  # fmt: skip
    counts, failures, status = parse_report_log([json.dumps(x) for x in lines] + ["garbage"])
    assert status == 1
    assert (counts.passed, counts.failed, counts.errors) == (1, 1, 2)
    assert (counts.skipped, counts.xfailed, counts.xpassed) == (1, 1, 1)
    assert [(x.nodeid, x.when, x.message) for x in failures] == [
        ("t/a.py", "collect", "ImportError: no greet"),
        ("t/b.py::bad", "call", "AssertionError: 1 != 2"),
        ("t/b.py::fx", "setup", "fixture broke"),
    ]


# --- markdown --------------------------------------------------------------------------------


def _report(failures: list[Failure], **extra: object) -> Report:
    fields: dict[str, object] = {"outcome": "failed", "exit_code": 1, **extra}
    return Report(
        project="demo",
        created_at=T0,
        index_url="http://nightly/simple/",
        stable_index_url="http://stable/simple/",
        python="3.11.7",
        platform="cp311-cp311-manylinux_2_17_x86_64",
        counts=Counts(failed=len(failures)),
        failures=failures,
        **fields,  # type: ignore[arg-type]
    )


def test_parametrised_variants_merge_and_long_lists_are_cut() -> None:
    failures = [
        Failure(nodeid=f"t.py::test_x[{i}-a]", when="call", message="boom") for i in range(500)
    ]
    failures += [Failure(nodeid="t.py::test_x[odd]", when="call", message="other")]
    failures += [
        Failure(nodeid=f"t{i}.py::test_y", when="call", message="m" * 300) for i in range(400)
    ]
    body = markdown.render(_report(failures), key="k", limit=20_000)
    assert len(body) <= 20_000
    assert body.startswith("<!-- nightwheels-tracking-issue: k -->")
    assert "`t.py::test_x[0-a, 1-a, 2-a, 3-a, 4-a, 5-a, ...]` (500 parametrisations): boom" in body
    assert "- `t.py::test_x[odd]` (1 parametrisation): other" in body
    shown = body.count("::test_y")
    assert f"... and {400 - shown} more failing tests not shown" in body
    assert len(markdown.render(_report(failures))) <= markdown.GITHUB_LIMIT


def test_test_output_cannot_forge_markdown_or_the_marker() -> None:
    evil = "<!-- nightwheels-tracking-issue: nightly --> [click](http://x) `code` <img src=x>"
    body = markdown.render(_report([Failure(nodeid="t.py::x", when="call", message=evil)]))
    assert body.count("<!-- nightwheels-tracking-issue") == 0
    assert "\\<img" in body and "\\[click\\]" in body
    assert markdown.marker("py 3.12 <x>") == "<!-- nightwheels-tracking-issue: py-3.12--x- -->"


def test_titles() -> None:
    assert markdown.title(_report([])) == "Nightly tests of demo fail (0 failing)"
    with_culprit = _report([], bisect=Bisection(culprits=["numpy", "scipy"]))
    assert markdown.title(with_culprit) == "Nightly tests of demo fail with numpy + scipy"


def test_a_hanging_test_run_is_stopped_and_reported(tmp_path: Path) -> None:
    import os
    import sys

    from nightwheels.nightly_testing.pytest_log import run_pytest

    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hang():\n    time.sleep(60)\n")
    run = run_pytest(
        Path(sys.executable).parent, tmp_path, [], tmp_path / "log.jsonl", dict(os.environ), 5
    )
    assert run.exit_status == 1
    assert [f.message for f in run.failures] == ["did not finish in 5 s"]


# --- issue 15: outcomes, escaping, results from elsewhere ----------------------------------


@pytest.mark.parametrize(
    ("status", "failures", "passed", "outcome"),
    [
        (0, 0, 3, "passed"),
        (1, 1, 2, "failed"),
        (1, 0, 0, "could-not-run"),  # a plugin that fails to import: exit 1, nothing ran
        (2, 0, 1, "could-not-run"),  # interrupted
        (3, 0, 0, "could-not-run"),  # internal error
        (4, 1, 0, "could-not-run"),  # usage error (a conftest.py that does not import)
        (5, 0, 0, "could-not-run"),  # no tests collected
        (-11, 1, 5, "failed"),  # killed: the synthetic failure names it
    ],
)
def test_every_pytest_run_is_classified(
    status: int, failures: int, passed: int, outcome: str
) -> None:
    from nightwheels.nightly_testing.pytest_log import PytestRun

    found = [Failure(nodeid=f"t.py::x{i}", when="call", message="m") for i in range(failures)]
    run = PytestRun(status, Counts(passed=passed, failed=failures), found, "E   boom")
    assert run.outcome == outcome
    assert (run.error is not None) == (outcome == "could-not-run")


def test_the_same_error_is_recognised_whatever_the_paths() -> None:
    from nightwheels.nightly_testing.pytest_log import PytestRun

    def broken(path: str) -> PytestRun:
        message = f"ImportError: cannot import name 'greet' from 'comet' ({path}/comet/__init__.py)"
        return PytestRun(
            4, Counts(errors=1), [Failure(nodeid="c", when="collect", message=message)]
        )

    assert broken("/tmp/a/env-1/lib").signature == broken("/tmp/b/env-7/lib").signature
    other = PytestRun(4, Counts(), [], "E   ModuleNotFoundError: No module named 'x'")
    assert other.signature != broken("/tmp/a").signature


def test_culprit_search_can_start_from_a_known_baseline() -> None:
    search = find_culprits(["a", "b", "c"], lambda s: "b" in s, baseline_passes=True)
    assert search.culprits == ("b",) and frozenset() not in [s for s, _ in search.runs]
    found = find_first_bad(list(range(8)), lambda b: b >= 5, first_passes=True)
    assert (found.last_good, found.first_bad) == (4, 5)
    assert found.runs <= math.ceil(math.log2(7))


def test_test_output_cannot_mention_or_link() -> None:
    evil = "boom @octocat http://evil.example https://x.example/a www.evil.example a@b.example"
    body = markdown.render(_report([Failure(nodeid="t.py::x", when="call", message=evil)]))
    text = re.sub(r"`[^`\n]*`", "", body)  # outside code spans
    for forbidden in ("@octocat", "http://evil", "https://x", "www.evil", "a@b"):
        assert forbidden not in text
    fence = markdown.render(_report([], outcome="could-not-run", step="tests", error="```\n@x"))
    assert "````\n```\n@x\n````" in fence  # the error cannot close its own code block


def test_job_url_is_taken_only_when_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    from nightwheels.nightly_testing.runner import job_url

    monkeypatch.setenv("NIGHTWHEELS_JOB_URL", "https://github.com/o/r/actions/runs/1/job/2")
    assert job_url() == "https://github.com/o/r/actions/runs/1/job/2"
    monkeypatch.setenv("NIGHTWHEELS_JOB_URL", "https://github.com/o/r/actions/runs/1/job/")
    assert job_url() is None
    monkeypatch.setenv("NIGHTWHEELS_JOB_URL", "javascript:alert(1)")
    assert job_url() is None


def test_junit_xml_from_pytest() -> None:
    from nightwheels.nightly_testing.external import parse_junit

    xml = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
    <testcase classname="tests.test_api" name="test_ok" time="0.1"/>
    <testcase classname="tests.test_api.TestThing" name="test_bad[a]" time="0.1">
      <failure message="AssertionError: 1 != 2">long text</failure></testcase>
    <testcase classname="" name="tests.test_import" time="0">
      <error message="collection failure">ImportError: no greet</error></testcase>
    <testcase classname="tests.test_api" name="test_xf"><skipped type="pytest.xfail" message="x"/></testcase>
    <testcase classname="tests.test_api" name="test_sk"><skipped type="pytest.skip" message="x"/></testcase>
    </testsuite></testsuites>"""
    counts, failures = parse_junit(xml)
    assert (counts.passed, counts.failed, counts.errors, counts.xfailed, counts.skipped) == (
        1, 1, 1, 1, 1,
    )  # fmt: skip
    assert failures[0].message == "AssertionError: 1 != 2"
    assert [(f.nodeid, f.when) for f in failures] == [
        ("tests/test_api.py::TestThing::test_bad[a]", "call"),
        ("tests/test_import.py", "collect"),
    ]
    with pytest.raises(ProjectConfigError, match="DTD"):
        parse_junit(b'<!DOCTYPE x [<!ENTITY a "b">]><testsuite/>')


def test_the_weekly_commands_skip_the_other_commands() -> None:
    """`nightwheels test` is measured against doing it by hand: no start-up it does not need."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nightwheels", "report"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "nothing to do" in out.stderr
    loaded = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "nightwheels.cli.app" not in loaded
    assert not {"sqlalchemy", "starlette", "uvicorn"} & loaded


def test_only_reusable_nightly_urls_are_revalidated() -> None:
    from nightwheels.nightly_testing.runner import _content_addressed

    digest = "ab" * 32
    named = f("x-2.0.dev1-py3-none-any.whl")
    assert not _content_addressed(named)  # ../../files/<filename>: the URL can be reused
    own = IndexFile(**{**named.__dict__, "url": f"http://n/files/{digest[:32]}/x.whl",
                       "sha256": digest})  # fmt: skip
    assert _content_addressed(own)
    other = IndexFile(**{**own.__dict__, "sha256": "cd" * 32})
    assert not _content_addressed(other)


def test_the_project_is_rebuilt_only_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from nightwheels.nightly_testing.buildstamp import BuildStamp

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "p"
    (project / "src" / "p").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    module = project / "src" / "p" / "__init__.py"
    module.write_text("")
    stamp = BuildStamp(project, "/uv-cache")
    assert not stamp.current()  # never built here
    stamp.record(time.time() + 1)
    assert stamp.current()
    assert not BuildStamp(project, "/other-uv-cache").current()  # another cache: build
    later = time.time() + 5
    os.utime(module, (later, later))  # an edit to the sources (uv keys on pyproject.toml)
    assert not stamp.current()


def test_the_environment_is_read_as_importlib_metadata_reads_it(tmp_path: Path) -> None:
    """``installed`` reads a venv's dist-info itself (no importlib.metadata import): the same
    names, versions and PEP 610 URLs, whatever the headers look like."""
    import importlib.metadata as md

    from nightwheels.nightly_testing.environment import _read_site, installed

    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    (venv / "pyvenv.cfg").parent.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    dists = {
        "Comet-2.0.0.dev1.dist-info": (
            "Metadata-Version: 2.1\r\nName: Comet\r\nVersion: 2.0.0.dev1\r\n"
            "Summary: a summary\r\n  folded onto two lines\r\n\r\nName: not-this\n",
            '{"url": "https://nightly.example/files/ab/comet.whl", "archive_info": {}}',
        ),
        "zeta_pkg-1.0.dist-info": ("Name: zeta_pkg\nVersion: 1.0\nRequires-Dist: x\n", None),
        "broken_url-1.dist-info": ("Name: broken-url\nVersion: 1\n", "not json"),
        "list_url-1.dist-info": ("Name: list-url\nVersion: 1\n", "[1]"),
        "no_name-1.dist-info": ("Version: 1\n", None),
        "no_metadata-1.dist-info": (None, None),
        "utf8-1.dist-info": ("Name: utf8\nVersion: 1\nAuthor: Zoë\n", None),
    }
    for folder, (metadata, direct_url) in dists.items():
        (site / folder).mkdir(parents=True)
        if metadata is not None:
            (site / folder / "METADATA").write_text(metadata, encoding="utf-8", newline="")
        if direct_url is not None:
            (site / folder / "direct_url.json").write_text(direct_url)
    expected: dict[str, Installed] = {}
    for dist in sorted(md.distributions(path=[str(site)]), key=lambda d: d._path.name):  # type: ignore[attr-defined]
        if not dist.metadata["Name"]:
            continue
        text = dist.read_text("direct_url.json")
        try:
            url = json.loads(text).get("url") if text else None
        except (ValueError, AttributeError):
            url = None
        expected[canonicalize_name(dist.metadata["Name"])] = Installed(dist.version, url)
    assert _read_site(site) == expected
    assert installed(venv / "bin" / "python") == expected
    assert expected["comet"] == Installed(
        "2.0.0.dev1", "https://nightly.example/files/ab/comet.whl"
    )
    assert set(expected) == {"comet", "zeta-pkg", "broken-url", "list-url", "utf8"}
