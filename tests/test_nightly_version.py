"""The nightly version rule and where projects keep their version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from nightwheels.building.build import rewrite_version, temporarily_rewritten
from nightwheels.building.project import source_time, version_source
from nightwheels.building.stamp import next_base, nightly_version
from nightwheels.errors import InvalidVersion, Misconfigured
from tests.support.projects import commit_all, git, scm_project, static_project, write

WHEN = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("1.2.0.dev0", "1.2.0.dev202611250102"),
        ("1.2.0", "1.2.1.dev202611250102"),
        ("v2.0", "2.1.dev202611250102"),
        ("2.0.0rc1", "2.0.0rc2.dev202611250102"),
        ("2.0.0rc1.dev3", "2.0.0rc1.dev202611250102"),
        ("2.0.0.post1", "2.0.1.dev202611250102"),
        ("1!3.1", "1!3.2.dev202611250102"),
        ("1.2.3+local.7", "1.2.4.dev202611250102"),
    ],
)
def test_nightly_version_examples(base: str, expected: str) -> None:
    assert str(nightly_version(base, WHEN)) == expected


def test_time_is_utc_and_must_be_aware() -> None:
    paris = WHEN.astimezone(timezone(timedelta(hours=1)))
    assert nightly_version("1.0.dev0", paris) == nightly_version("1.0.dev0", WHEN)
    with pytest.raises(ValueError):
        nightly_version("1.0.dev0", WHEN.replace(tzinfo=None))
    with pytest.raises(InvalidVersion):
        nightly_version("not a version", WHEN)


versions = st.builds(
    lambda rel, pre, dev, post: Version(
        ".".join(map(str, rel))
        + (f"{pre[0]}{pre[1]}" if pre else "")
        + (f".post{post}" if post is not None else "")
        + (f".dev{dev}" if dev is not None else "")
    ),
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 9)),
    st.none() | st.integers(0, 99),
    st.none() | st.integers(0, 5),
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@given(versions, times, times)
def test_nightlies_are_valid_ordered_by_time_and_above_the_base(
    base: Version, t1: datetime, t2: datetime
) -> None:
    n1, n2 = nightly_version(base, t1), nightly_version(base, t2)
    assert n1.is_devrelease and n1.local is None
    assert Version(str(n1)) == n1  # round-trips as a valid PEP 440 string
    if t1.replace(second=0, microsecond=0) < t2.replace(second=0, microsecond=0):
        assert n1 < n2
    # Above the last release it follows, below the release it leads to.
    if not base.is_devrelease:
        assert n1 > base
    assert n1 < Version(next_base(base))


def test_static_project_and_its_rewrite(tmp_path: Path) -> None:
    root = static_project(tmp_path / "p")
    source = version_source(root)
    assert (source.kind, source.base, source.name) == ("static", "1.2.0.dev0", "sample-nightly")
    text = (root / "pyproject.toml").read_text()
    new = rewrite_version(source, text, "1.2.0.dev202611250102")
    assert new.replace('"1.2.0.dev202611250102"', '"1.2.0.dev0"') == text
    assert 'requires-python = ">=3.8"' in new  # only the [project] version line changed


def test_scm_project_base_from_last_tag(tmp_path: Path) -> None:
    source = version_source(scm_project(tmp_path / "s", tag="v0.4.1"))
    assert (source.kind, source.base, source.path) == ("scm", "0.4.1", None)
    untagged = version_source  # no tag and no fallback: a clear error naming the fix
    with pytest.raises(Misconfigured, match="fetch-depth: 0"):
        untagged(scm_project(tmp_path / "u", tag=None))


def test_version_in_a_file_hatch_setuptools_flit(tmp_path: Path) -> None:
    hatch = write(
        tmp_path / "h",
        {
            "pyproject.toml": """
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"
                [project]
                name = "h"
                dynamic = ["version"]
                [tool.hatch.version]
                path = "src/h/__about__.py"
            """,
            "src/h/__about__.py": "__version__ = '3.0.dev0'\n",
        },
    )
    source = version_source(hatch)
    assert (source.kind, source.base) == ("file", "3.0.dev0")
    assert rewrite_version(source, "__version__ = '3.0.dev0'\n", "3.0.dev7") == (
        "__version__ = '3.0.dev7'\n"
    )

    st_attr = write(
        tmp_path / "a",
        {
            "pyproject.toml": """
                [project]
                name = "a"
                dynamic = ["version"]
                [tool.setuptools.dynamic]
                version = {attr = "a.version.VERSION"}
            """,
            "a/version.py": 'VERSION: str = "0.9"\n',
        },
    )
    assert version_source(st_attr).base == "0.9"

    st_file = write(
        tmp_path / "f",
        {
            "pyproject.toml": """
                [project]
                name = "f"
                dynamic = ["version"]
                [tool.setuptools.dynamic]
                version = {file = "VERSION.txt"}
            """,
            "VERSION.txt": "5.1.dev0\n",
        },
    )
    source = version_source(st_file)
    assert source.base == "5.1.dev0"
    assert rewrite_version(source, "5.1.dev0\n", "5.1.dev9") == "5.1.dev9\n"

    flit = write(
        tmp_path / "fl",
        {
            "pyproject.toml": """
                [build-system]
                requires = ["flit_core>=3.4"]
                build-backend = "flit_core.buildapi"
                [project]
                name = "flit-thing"
                dynamic = ["version", "description"]
            """,
            "flit_thing/__init__.py": '"""Doc."""\n__version__ = "0.3.0"\n',
        },
    )
    assert version_source(flit).base == "0.3.0"


def test_meson_static_version(tmp_path: Path) -> None:
    root = write(
        tmp_path / "m",
        {
            "pyproject.toml": """
                [build-system]
                requires = ["meson-python"]
                build-backend = "mesonpy"
                [project]
                name = "m"
                dynamic = ["version"]
            """,
            "meson.build": "project('m', 'c',\n  version: '2.1.0.dev0',\n  license: 'BSD')\n",
        },
    )
    source = version_source(root)
    assert (source.kind, source.base) == ("meson", "2.1.0.dev0")
    text = (root / "meson.build").read_text()
    assert "version: '2.1.0.dev5'" in rewrite_version(source, text, "2.1.0.dev5")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no pyproject.toml"),
        ({"pyproject.toml": "[project\nname = 1"}, "not valid TOML"),
        ({"pyproject.toml": '[project]\nname = "x"\nversion = "banana"\n'}, "not a PEP 440"),
        ({"pyproject.toml": '[project]\nname = "x"\ndynamic = ["version"]\n'}, "--base-version"),
        (
            {
                "pyproject.toml": '[project]\nname = "x"\ndynamic = ["version"]\n'
                '[tool.hatch.version]\npath = "../../etc/passwd"\n'
            },
            "outside the project",
        ),
    ],
)
def test_unsupported_or_broken_projects_are_explained(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    root = write(tmp_path / "bad", files) if files else tmp_path
    with pytest.raises(Misconfigured, match=message):
        version_source(root)


def test_source_time_is_the_commit_time_else_now(tmp_path: Path) -> None:
    root = static_project(tmp_path / "p")
    assert source_time(root) == datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)
    later = "2026-11-26T23:59:00+00:00"
    (root / "x").write_text("x")
    commit_all(root, "later", date=later)
    assert source_time(root) == datetime(2026, 11, 26, 23, 59, tzinfo=UTC)
    assert git(root, "log", "-1", "--format=%ct")  # sanity: it is a git work tree
    plain = tmp_path / "plain"
    plain.mkdir()
    before = datetime.now(UTC)
    assert source_time(plain) >= before.replace(microsecond=0)
    with pytest.raises(Misconfigured):
        source_time(root, "yesterday")


def test_rewrite_is_always_restored(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_bytes(b'[project]\nversion = "1.0"\r\n')
    original = path.read_bytes()
    with pytest.raises(RuntimeError), temporarily_rewritten(path, "changed"):
        assert path.read_text() == "changed"
        assert (tmp_path / "pyproject.toml.nightwheels-orig").read_bytes() == original
        raise RuntimeError("the build blew up")
    assert path.read_bytes() == original
    assert not (tmp_path / "pyproject.toml.nightwheels-orig").exists()


def test_leftover_backup_from_a_killed_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("rewritten by a killed build")
    (tmp_path / "pyproject.toml.nightwheels-orig").write_text("the original")
    with pytest.raises(Misconfigured, match="mv "), temporarily_rewritten(path, "again"):
        pass
    assert path.read_text() == "rewritten by a killed build"  # nothing touched
