"""The index driven by the real clients: twine and uv publish upload, pip and uv install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from tests.support import clients
from tests.support.backends import SQLITE_ONLY, Backend
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel


def _site(tmp_path: Path) -> Path:
    return tmp_path / "site"


@SQLITE_ONLY
def test_twine_upload_then_pip_install(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "demo", "1.0.0.dev202611250101", module_source="X = 41\n")
    out = clients.twine_upload(server.upload_url, uploader, wheel)
    assert "View at" in out.stdout or out.returncode == 0

    target = _site(tmp_path)
    clients.pip(
        "install",
        "--pre",
        "--no-deps",
        "--index-url",
        server.simple_url,
        "--target",
        str(target),
        "demo",
    )
    assert (target / "demo" / "__init__.py").read_text() == "X = 41\n"


@SQLITE_ONLY
def test_extra_index_url_and_pip_download(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "dist", "demo", "2.0.0.dev1")
    clients.twine_upload(server.upload_url, uploader, wheel)
    # --extra-index-url with an empty primary index: the file can only come from us.
    empty = tmp_path / "empty"
    empty.mkdir()
    dest = tmp_path / "dl"
    clients.pip(
        "download",
        "--pre",
        "--no-deps",
        "--index-url",
        empty.as_uri(),
        "--extra-index-url",
        server.simple_url,
        "-d",
        str(dest),
        "demo",
    )
    assert [p.name for p in dest.iterdir()] == [wheel.name]
    assert (dest / wheel.name).read_bytes() == wheel.read_bytes()


@SQLITE_ONLY
def test_pip_index_versions(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    for version in ("1.0.0.dev1", "1.0.0.dev2", "0.9"):
        clients.twine_upload(
            server.upload_url, uploader, make_wheel(tmp_path / version, "demo", version)
        )
    out = clients.pip("index", "versions", "--pre", "--index-url", server.simple_url, "demo")
    assert "demo (1.0.0.dev2)" in out.stdout
    assert "1.0.0.dev2, 1.0.0.dev1, 0.9" in out.stdout


@SQLITE_ONLY
def test_uv_publish_and_uv_install(
    server: LiveServer, uploader: str, tmp_path: Path, uv_cache: Path
) -> None:
    wheel = make_wheel(tmp_path / "dist", "demo", "3.0.0.dev5", module_source="Y = 'uv'\n")
    clients.uv_publish(server.upload_url, uploader, wheel, cache=uv_cache)
    venv = tmp_path / "venv"
    clients.uv("venv", "--python", sys.executable, str(venv), cache=uv_cache)
    clients.uv(
        "pip",
        "install",
        "--python",
        str(venv),
        "--prerelease=allow",
        "--index-url",
        server.simple_url,
        "demo",
        cache=uv_cache,
    )
    out = clients.run([str(venv / "bin" / "python"), "-c", "import demo; print(demo.Y)"])
    assert out.stdout.strip() == "uv"


def test_same_bytes_is_a_noop_and_new_bytes_replace(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    version = "1.0.0.dev0"  # the static nightly version many projects use
    first = make_wheel(tmp_path / "a", "demo", version, module_source="V = 1\n")
    clients.twine_upload(server.upload_url, uploader, first)
    page1 = httpx.get(server.simple_url + "demo/")
    # Same bytes again: a retry is a successful no-op and changes nothing.
    clients.twine_upload(server.upload_url, uploader, first)
    page2 = httpx.get(server.simple_url + "demo/")
    assert page2.headers["etag"] == page1.headers["etag"]

    second = make_wheel(tmp_path / "b", "demo", version, module_source="V = 2\n")
    assert second.name == first.name and second.read_bytes() != first.read_bytes()
    clients.twine_upload(server.upload_url, uploader, second)
    page3 = httpx.get(
        server.simple_url + "demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    files = page3.json()["files"]
    assert len(files) == 1
    import hashlib

    assert files[0]["hashes"]["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert page3.headers["etag"] != page1.headers["etag"]

    # A fresh pip (no cache) installs the replacement.
    target = tmp_path / "site"
    clients.pip(
        "install",
        "--pre",
        "--no-deps",
        "--index-url",
        server.simple_url,
        "--target",
        str(target),
        "demo",
    )
    assert (target / "demo" / "__init__.py").read_text() == "V = 2\n"

    events = server.cli("audit", "--json", check=False)
    if events.returncode == 0:  # the audit command arrives with the access issue
        assert "file.replace" in events.stdout


@SQLITE_ONLY
def test_replace_forbidden_by_setting(tmp_path: Path, backend: Backend) -> None:
    with LiveServer(
        data=tmp_path / "data", env={"NIGHTWHEELS_ALLOW_REPLACE": "false"}, backend=backend
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        clients.twine_upload(
            live.upload_url,
            token,
            make_wheel(tmp_path / "a", "demo", "1.0.dev0", module_source="A=1\n"),
        )
        again = make_wheel(tmp_path / "b", "demo", "1.0.dev0", module_source="A=2\n")
        out = clients.twine_upload(live.upload_url, token, again, check=False)
        assert out.returncode != 0
        response = post_wheel(live, token, again)
        assert response.status_code == 409
        assert "does not allow replacing" in response.text


@SQLITE_ONLY
def test_labels_have_their_own_view(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "rc", "demo", "1.1.0rc1.dev3")
    response = post_wheel(server, uploader, wheel, label="rc", json=True)
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == {"rc": "uploaded"}
    assert httpx.get(server.simple_url + "demo/").status_code == 404
    assert wheel.name in httpx.get(f"{server.url}/label/rc/simple/demo/").text
    assert "demo" in httpx.get(f"{server.url}/label/rc/simple/").text
    target = tmp_path / "site"
    clients.pip(
        "install",
        "--pre",
        "--no-deps",
        "--index-url",
        f"{server.url}/label/rc/simple/",
        "--target",
        str(target),
        "demo",
    )
    assert (target / "demo").is_dir()


@SQLITE_ONLY
def test_sdists_refused_by_default(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    from tests.support.wheels import make_sdist

    sdist = make_sdist(tmp_path / "dist", "demo", "1.0.dev1")
    out = clients.twine_upload(server.upload_url, uploader, sdist, check=False)
    assert out.returncode != 0
    assert "wheels only" in out.stdout + out.stderr or "400" in out.stdout + out.stderr
    assert server.tmp_files() == []


@SQLITE_ONLY
def test_sdists_allowed_by_setting(tmp_path: Path, backend: Backend) -> None:
    from tests.support.wheels import make_sdist

    with LiveServer(
        data=tmp_path / "data", env={"NIGHTWHEELS_ALLOW_SDIST": "true"}, backend=backend
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        sdist = make_sdist(tmp_path / "dist", "demo", "1.0.dev1")
        clients.twine_upload(live.upload_url, token, sdist)
        page = httpx.get(
            live.simple_url + "demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).json()
        assert [f["filename"] for f in page["files"]] == [sdist.name]
        assert page["files"][0]["core-metadata"] is not False


@SQLITE_ONLY
def test_metadata_file_matches_pep658_hash(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    import hashlib

    wheel = make_wheel(tmp_path, "demo", "1.0.dev1", requires_python=">=3.9")
    clients.twine_upload(server.upload_url, uploader, wheel)
    doc = httpx.get(server.simple_url + "demo/?format=json").json()
    entry = doc["files"][0]
    url = httpx.URL(server.simple_url + "demo/").join(entry["url"])
    metadata = httpx.get(str(url) + ".metadata")
    assert metadata.status_code == 200
    assert hashlib.sha256(metadata.content).hexdigest() == entry["core-metadata"]["sha256"]
    assert b"Name: demo" in metadata.content
    body = httpx.get(url)
    assert body.content == wheel.read_bytes()
    assert body.headers["content-length"] == str(len(wheel.read_bytes()))
    assert body.headers["etag"] == f'"{hashlib.sha256(wheel.read_bytes()).hexdigest()}"'
    assert "immutable" in body.headers["cache-control"]
    assert json.loads(json.dumps(doc))["meta"]["api-version"] >= "1.1"
