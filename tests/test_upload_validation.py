"""Every rejected upload: a precise status, a message to act on, and nothing left behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import BACKENDS, SQLITE_ONLY, Backend, open_backend
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel, metadata_text, zip_bytes


def _form(name: str = "demo", version: str = "1.0.dev1", **extra: str) -> dict[str, str]:
    return {":action": "file_upload", "name": name, "version": version, **extra}


def post(
    server: LiveServer,
    token: str | None,
    filename: str,
    content: bytes,
    data: dict[str, str] | None = None,
    digest: bool = True,
) -> httpx.Response:
    form = dict(data if data is not None else _form())
    if digest and "sha256_digest" not in form:
        form["sha256_digest"] = hashlib.sha256(content).hexdigest()
    auth = ("__token__", token) if token else None
    return httpx.post(
        server.upload_url, data=form, files={"content": (filename, content)}, auth=auth, timeout=30
    )


def assert_nothing_left(server: LiveServer, blobs_before: list[Path]) -> None:
    assert server.tmp_files() == [], "a staging file was left behind"
    assert server.blobs() == blobs_before, "a blob was stored for a rejected upload"
    detail = httpx.get(f"{server.url}/api/v1/projects/demo")
    assert detail.status_code == 200
    assert detail.json()["files"] == []


def good_wheel(tmp_path: Path, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    return make_wheel(tmp_path, "demo", "1.0.dev1", **kwargs)


CASES = {
    "not a distribution filename": lambda tmp: (
        "demo-1.0.dev1.zip",
        good_wheel(tmp).read_bytes(),
        400,
        "not a wheel",
    ),
    "invalid wheel filename": lambda tmp: (
        "demo.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "invalid wheel filename",
    ),
    "invalid version in filename": lambda tmp: (
        "demo-1.0.x.y.z-py3-none-any.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "invalid",
    ),
    "path in filename": lambda tmp: (
        "../demo-1.0.dev1-py3-none-any.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "path",
    ),
    "backslash in filename": lambda tmp: (
        "..\\demo-1.0.dev1-py3-none-any.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "path",
    ),
    "slash in filename": lambda tmp: (
        "x/demo-1.0.dev1-py3-none-any.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "path",
    ),
    "control character in filename": lambda tmp: (
        "demo-1.0.dev1-py3-none-any\x07.whl",
        good_wheel(tmp).read_bytes(),
        400,
        "not allowed",
    ),
    "not a zip": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        b"this is not a zip file",
        400,
        "not a valid zip",
    ),
    "truncated zip": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        good_wheel(tmp).read_bytes()[:-40],
        400,
        "zip",
    ),
    "no METADATA": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes({"demo/__init__.py": b""}),
        400,
        "no .dist-info/METADATA",
    ),
    "two METADATA": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "a-1.dist-info/METADATA": metadata_text("demo", "1.0.dev1").encode(),
                "b-1.dist-info/METADATA": metadata_text("demo", "1.0.dev1").encode(),
            }
        ),
        400,
        "more than one",
    ),
    "path traversal member": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "../../etc/evil": b"x",
                "demo-1.0.dev1.dist-info/METADATA": metadata_text("demo", "1.0.dev1").encode(),
            }
        ),
        400,
        "path traversal",
    ),
    "unsupported Metadata-Version": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "demo-1.0.dev1.dist-info/METADATA": b"Metadata-Version: 9.9\nName: demo\nVersion: 1.0.dev1\n"
            }
        ),
        400,
        "unsupported Metadata-Version",
    ),
    "metadata name mismatch": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {"demo-1.0.dev1.dist-info/METADATA": metadata_text("other", "1.0.dev1").encode()}
        ),
        400,
        "metadata inside says 'other'",
    ),
    "metadata version mismatch": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes({"demo-1.0.dev1.dist-info/METADATA": metadata_text("demo", "1.0.dev0").encode()}),
        400,
        "pip 24.1+ and uv refuse",
    ),
    "invalid metadata version string": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "demo-1.0.dev1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: not-a-version\n"
            }
        ),
        400,
        "not valid",
    ),
    "non-UTF-8 metadata": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "demo-1.0.dev1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: d\xffmo\nVersion: 1.0.dev1\n"
            }
        ),
        400,
        "metadata",
    ),
    "invalid Requires-Python": lambda tmp: (
        "demo-1.0.dev1-py3-none-any.whl",
        zip_bytes(
            {
                "demo-1.0.dev1.dist-info/METADATA": metadata_text(
                    "demo", "1.0.dev1", requires_python=">=3.x!"
                ).encode()
            }
        ),
        400,
        "Requires-Python",
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    """One server per backend for the module: every test leaves ``demo`` without files."""
    with (
        open_backend(request) as backend,
        LiveServer(data=tmp_path_factory.mktemp("validation") / "data", backend=backend) as live,
    ):
        live.create_user("alice")
        live.create_user("bob")
        token = live.token("alice", "demo", "accepted")
        yield live, token


@pytest.fixture
def server(shared: tuple[LiveServer, str]) -> LiveServer:
    return shared[0]


@pytest.fixture
def demo_token(shared: tuple[LiveServer, str]) -> str:
    return shared[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_distribution_is_refused(
    server: LiveServer, demo_token: str, tmp_path: Path, case: str
) -> None:
    filename, content, status, message = CASES[case](tmp_path)
    before = server.blobs()
    response = post(server, demo_token, filename, content)
    assert response.status_code == status, response.text
    assert message.lower() in response.text.lower()
    assert "Traceback" not in response.text
    assert_nothing_left(server, before)


def test_digest_mismatch(server: LiveServer, demo_token: str, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    before = server.blobs()
    response = post(
        server, demo_token, wheel.name, wheel.read_bytes(), _form(sha256_digest="0" * 64)
    )
    assert response.status_code == 400
    assert "sha256 digest mismatch" in response.text
    assert_nothing_left(server, before)


def test_no_digest(server: LiveServer, demo_token: str, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    response = post(server, demo_token, wheel.name, wheel.read_bytes(), digest=False)
    assert response.status_code == 400
    assert "no digest" in response.text


def test_form_name_must_match_file(server: LiveServer, demo_token: str, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    response = post(server, demo_token, wheel.name, wheel.read_bytes(), _form(name="other"))
    assert response.status_code in (400, 403)


def test_invalid_form_version(server: LiveServer, demo_token: str, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    response = post(server, demo_token, wheel.name, wheel.read_bytes(), _form(version="banana"))
    assert response.status_code == 400
    assert "not a valid version" in response.text


@pytest.mark.parametrize("missing", ["name", "version", ":action"])
def test_missing_field(server: LiveServer, demo_token: str, tmp_path: Path, missing: str) -> None:
    wheel = good_wheel(tmp_path)
    form = _form()
    del form[missing]
    before = server.blobs()
    response = post(server, demo_token, wheel.name, wheel.read_bytes(), form)
    assert response.status_code == 400
    assert missing in response.text
    assert_nothing_left(server, before)


def test_missing_content(server: LiveServer, demo_token: str) -> None:
    response = httpx.post(server.upload_url, data=_form(), auth=("__token__", demo_token))
    assert response.status_code == 400
    assert "multipart" in response.text or "content" in response.text


def test_not_multipart(server: LiveServer, demo_token: str) -> None:
    response = httpx.post(server.upload_url, json={"a": 1}, auth=("__token__", demo_token))
    assert response.status_code == 400
    assert "multipart/form-data" in response.text


def test_malformed_multipart(server: LiveServer, demo_token: str) -> None:
    response = httpx.post(
        server.upload_url,
        content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nabc",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        auth=("__token__", demo_token),
    )
    assert response.status_code == 400
    assert server.tmp_files() == []


def test_truncated_body_leaves_no_staging_file(
    server: LiveServer, demo_token: str, tmp_path: Path
) -> None:
    wheel = good_wheel(tmp_path, payload=b"x" * 300_000)
    request = httpx.Request(
        "POST", server.upload_url, data=_form(), files={"content": (wheel.name, wheel.read_bytes())}
    )
    body = request.read()
    cut = body[: len(body) // 2]
    response = httpx.post(
        server.upload_url,
        content=cut,
        auth=("__token__", demo_token),
        headers={"Content-Type": request.headers["content-type"]},
    )
    assert response.status_code == 400
    assert server.tmp_files() == []


def test_missing_credentials_get_401_with_challenge(server: LiveServer, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    response = post(server, None, wheel.name, wheel.read_bytes())
    assert response.status_code == 401
    assert "Basic" in response.headers["www-authenticate"]
    assert "authentication required" in response.text


def test_wrong_token_gets_401(server: LiveServer, demo_token: str, tmp_path: Path) -> None:
    wheel = good_wheel(tmp_path)
    forged = demo_token[:-4] + ("AAAA" if not demo_token.endswith("AAAA") else "BBBB")
    response = post(server, forged, wheel.name, wheel.read_bytes())
    assert response.status_code == 401
    assert response.text.strip() == "invalid token"
    assert post(server, "garbage", wheel.name, wheel.read_bytes()).status_code == 401


def test_revoked_tokens_say_why(server: LiveServer, tmp_path: Path) -> None:
    token = server.token("alice", "demo")
    wheel = good_wheel(tmp_path)
    prefix = token.split("_")[1]
    server.cli("token", "revoke", prefix)
    response = post(server, token, wheel.name, wheel.read_bytes())
    assert response.status_code == 401
    assert "revoked" in response.text


def test_token_for_another_project_gets_403(
    server: LiveServer, demo_token: str, tmp_path: Path
) -> None:
    other = server.token("bob", "other")
    wheel = good_wheel(tmp_path)
    before = server.blobs()
    response = post(server, other, wheel.name, wheel.read_bytes())
    assert response.status_code == 403
    assert "may not upload to 'demo'" in response.text
    assert_nothing_left(server, before)


@SQLITE_ONLY
def test_size_limit(tmp_path: Path, backend: Backend) -> None:
    with LiveServer(
        data=tmp_path / "data", env={"NIGHTWHEELS_MAX_UPLOAD_SIZE": "100000"}, backend=backend
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev1", payload=os.urandom(200_000))
        assert wheel.stat().st_size > 100_000
        response = post(live, token, wheel.name, wheel.read_bytes())
        assert response.status_code == 413
        assert "larger than this index's limit" in response.text
        assert live.tmp_files() == []
        # Just under the limit is fine.
        small = make_wheel(tmp_path / "s", "demo", "1.0.dev2")
        assert (
            post(live, token, small.name, small.read_bytes(), _form(version="1.0.dev2")).status_code
            == 200
        )


def test_valid_upload_after_failures_is_listed(
    server: LiveServer, demo_token: str, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "accepted", "1.0.dev1")
    form = _form(name="accepted")
    assert post(server, demo_token, wheel.name, b"garbage", form).status_code == 400
    response = post(server, demo_token, wheel.name, wheel.read_bytes(), form)
    assert response.status_code == 200, response.text
    assert response.text.startswith("OK: accepted-1.0.dev1-py3-none-any.whl uploaded")
    assert wheel.name in httpx.get(server.simple_url + "accepted/").text
