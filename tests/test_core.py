"""Pure rules: names, filenames, negotiation, tokens, archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nightwheels.core import dists, filenames, names, negotiation, permissions, tokens
from nightwheels.errors import InvalidDistribution, InvalidFilename, InvalidMetadata, InvalidName
from tests.support.wheels import make_wheel, metadata_text


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Foo", "foo"), ("foo.bar", "foo-bar"), ("Foo__Bar", "foo-bar"), ("a", "a"), ("A-._b", "a-b")],
)
def test_normalize_name(raw: str, normal: str) -> None:
    assert names.normalize_name(raw) == normal


@pytest.mark.parametrize("bad", ["", "-foo", "foo-", "foo bar", "föö", "a/b", "../x", "x" * 201])
def test_invalid_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        names.normalize_name(bad)


@pytest.mark.parametrize("label", ["main", "rc", "nightly-2", "a.b_c"])
def test_valid_labels(label: str) -> None:
    assert names.validate_label(label) == label


@pytest.mark.parametrize("label", ["", "Main", "-x", "a b", "x" * 65, "../main"])
def test_invalid_labels(label: str) -> None:
    with pytest.raises(InvalidName):
        names.validate_label(label)


def test_parse_wheel_filename() -> None:
    dist = filenames.parse_filename("numpy-2.1.0.dev0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert dist.name == "numpy"
    assert str(dist.version) == "2.1.0.dev0"
    assert dist.packagetype == "bdist_wheel"
    assert {str(t) for t in dist.tags} == {"cp312-cp312-manylinux_2_17_x86_64"}


def test_parse_compressed_tag_set() -> None:
    dist = filenames.parse_filename("six-1.16.0-py2.py3-none-any.whl")
    assert {str(t) for t in dist.tags} == {"py2-none-any", "py3-none-any"}


def test_parse_sdist_filename() -> None:
    dist = filenames.parse_filename("scipy-1.15.0.dev0.tar.gz")
    assert dist.packagetype == "sdist"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "foo",
        "foo.zip",
        "foo-1.0.egg",
        "../foo-1.0-py3-none-any.whl",
        "a/foo-1.0-py3-none-any.whl",
        "foo-1.0-py3-none-any.whl\x00",
        "foo-1.0-py3-none.whl",
        "foo-1.0-py3-none-any-extra-x.whl",
        ".foo-1.0-py3-none-any.whl",
        "foo-1.0 -py3-none-any.whl",
        "foo-notaversion!-py3-none-any.whl",
        "x" * 300 + ".whl",
        "foo-1.0-py3-none-any.WHL",
    ],
)
def test_bad_filenames(bad: str) -> None:
    with pytest.raises(InvalidFilename):
        filenames.parse_filename(bad)


def test_negotiation_cache_is_consistent() -> None:
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.01"
    assert negotiation.choose_media_type(accept) == negotiation.choose_media_type(accept)
    assert negotiation.choose_media_type("text/html;q=abc") is None
    assert negotiation.choose_media_type("") == "text/html"


def test_tokens_round_trip_and_constant_time_compare() -> None:
    new = tokens.generate_token()
    assert new.secret.startswith("nwt_" + new.prefix + "_")
    assert tokens.split_token(new.secret) == new.prefix
    assert tokens.token_matches(new.secret, new.digest)
    assert not tokens.token_matches(new.secret + "x", new.digest)
    assert tokens.split_token("pypi-abc") is None
    assert tokens.split_token("nwt_short_x") is None
    assert new.digest != new.secret and len(new.digest) == 64


def test_permissions() -> None:
    P = permissions.Permission
    assert permissions.role_allows("admin", P.MANAGE)
    assert permissions.role_allows("uploader", P.UPLOAD)
    assert not permissions.role_allows("uploader", P.MANAGE)
    assert not permissions.role_allows(None, P.UPLOAD)
    assert permissions.token_allows({"upload"}, {"a"}, "a", P.UPLOAD)
    assert not permissions.token_allows({"upload"}, {"a"}, "b", P.UPLOAD)
    assert not permissions.token_allows({"upload"}, None, "a", P.MANAGE)


def test_wheel_metadata_is_read_and_checked(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Demo.Pkg", "1.0.dev3", requires_python=">=3.10")
    dist = filenames.parse_filename(wheel.name)
    meta = dists.inspect_distribution(wheel, dist)
    assert meta.name == "Demo.Pkg"
    assert meta.requires_python == ">=3.10"
    assert meta.raw.startswith(b"Metadata-Version: 2.1")


def test_zip_bomb_metadata_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "demo-1.0.dist-info/METADATA",
            metadata_text("demo", "1.0") + "X" * (dists.MAX_METADATA_SIZE + 10),
        )
    assert path.stat().st_size < 100_000  # tiny on disk, huge when inflated
    with pytest.raises(InvalidDistribution, match="larger than"):
        dists.read_wheel_metadata(path)


@pytest.mark.parametrize("member", ["/etc/passwd", "../x", "a/../../x", "..\\..\\x", "C:/x"])
def test_traversal_members_are_refused(tmp_path: Path, member: str) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, b"x")
        zf.writestr("demo-1.0.dist-info/METADATA", metadata_text("demo", "1.0"))
    with pytest.raises(InvalidDistribution, match="path traversal"):
        dists.read_wheel_metadata(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"Name: x\nVersion: 1\n", "no Metadata-Version"),
        (b"Metadata-Version: 2.1\nVersion: 1\n", "no Name"),
        (b"Metadata-Version: 2.1\nName: x\n", "no Version"),
        (b"Metadata-Version: 3.0\nName: x\nVersion: 1\n", "unsupported"),
        (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Python: >>3\n", "Requires-Python"),
    ],
)
def test_bad_metadata(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidMetadata, match=message):
        dists.parse_metadata(raw)
