"""Readable wheel tags (core/tags.py)."""

from __future__ import annotations

import pytest

from nightwheels.core.tags import describe_filename, describe_platform, describe_tag


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("cp313-cp313-manylinux_2_17_x86_64", "Linux x86-64, CPython 3.13"),
        ("cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64", "Linux x86-64, CPython 3.13"),
        ("cp312-cp312-manylinux2014_aarch64", "Linux ARM64, CPython 3.12"),
        ("cp39-cp39-manylinux1_i686", "Linux x86, CPython 3.9"),
        ("cp313-cp313t-musllinux_1_2_aarch64", "Linux ARM64 (musl), CPython 3.13 free-threaded"),
        ("cp310-cp310-linux_ppc64le", "Linux POWER little-endian, CPython 3.10"),
        ("cp311-cp311-macosx_11_0_arm64", "macOS Apple silicon, CPython 3.11"),
        ("cp311-cp311-macosx_10_9_x86_64", "macOS Intel, CPython 3.11"),
        (
            "cp311-cp311-macosx_10_9_universal2",
            "macOS universal (Apple silicon and Intel), CPython 3.11",
        ),
        ("cp313-cp313-win_amd64", "Windows x86-64, CPython 3.13"),
        ("cp313-cp313-win32", "Windows x86, CPython 3.13"),
        ("cp313-cp313-win_arm64", "Windows ARM64, CPython 3.13"),
        ("cp39-abi3-manylinux_2_28_x86_64", "Linux x86-64, CPython 3.9 or later (stable ABI)"),
        ("pp310-pypy310_pp73-manylinux_2_17_x86_64", "Linux x86-64, PyPy 3.10"),
        ("py3-none-any", "Any platform, Python 3"),
        ("py2.py3-none-any", "Any platform, Python 2 / Python 3"),
        ("cp312-cp312-pyodide_2024_0_wasm32", "WebAssembly, CPython 3.12"),
        ("cp313-cp313-ios_13_0_arm64_iphoneos", "iOS ARM64, CPython 3.13"),
        ("cp313-cp313-android_21_arm64_v8a", "Android ARM64, CPython 3.13"),
        ("graalpy311-graalpy242_311_native-manylinux_2_28_x86_64", "Linux x86-64, GraalPy 3.11"),
    ],
)
def test_describe_tag(tag: str, expected: str) -> None:
    assert str(describe_tag(tag)) == expected


def test_minimum_versions_go_into_detail() -> None:
    assert describe_tag("cp313-cp313-manylinux_2_17_x86_64").detail == (
        "glibc 2.17 or later (manylinux)"
    )
    assert describe_tag("cp313-cp313-manylinux2014_x86_64").detail == (
        "glibc 2.17 or later (manylinux)"
    )
    assert describe_tag("cp311-cp311-macosx_11_0_arm64").detail == "macOS 11.0 or later"
    assert describe_tag("cp313-cp313-musllinux_1_2_x86_64").detail == "musl 1.2 or later"
    assert describe_tag("py3-none-any").detail == ""


def test_unknown_platforms_are_shown_as_they_are() -> None:
    assert describe_platform("freebsd_14_0_release_amd64").text == "freebsd_14_0_release_amd64"
    assert str(describe_tag("cp313-cp313-solaris_2_11_sun4v")).startswith("solaris_2_11_sun4v,")
    assert str(describe_tag("xx3-none-any")) == "Any platform, xx3-none"


def test_filenames() -> None:
    assert str(describe_filename("numpy-2.3.0.dev0-cp313-cp313-win_amd64.whl")) == (
        "Windows x86-64, CPython 3.13"
    )
    assert describe_filename("numpy-2.3.0.dev0.tar.gz").platform == "Source"
    assert describe_filename("not-a-wheel.whl").platform == "unknown"


def test_sort_order_groups_platforms_then_newest_python_first() -> None:
    names = [
        "py3-none-any",
        "cp312-cp312-win_amd64",
        "cp313-cp313-macosx_11_0_arm64",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp313-cp313-manylinux_2_17_x86_64",
    ]
    ordered = sorted(names, key=lambda t: describe_tag(t).sort_key)
    assert ordered == [
        "cp313-cp313-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp313-cp313-macosx_11_0_arm64",
        "cp312-cp312-win_amd64",
        "py3-none-any",
    ]
