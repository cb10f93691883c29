"""``nightwheels export-static``: installs from a static host, with no nightwheels process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import clients
from tests.support.backends import POSTGRES_ONLY, SQLITE_ONLY, Backend
from tests.support.server import LiveServer, free_port, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


@contextmanager
def static_host(root: Path) -> Iterator[str]:
    """``python -m http.server`` on loopback: a plain static host."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(url), timeout=10)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def installed(tmp_path: Path, index_url: str, spec: str, name: str = "demo") -> str:
    target = tmp_path / f"site-{time.monotonic_ns()}"
    clients.pip(
        "install", "--pre", "--no-deps", "--index-url", index_url,
        "--target", str(target), spec,
    )  # fmt: skip
    return (target / name / "__init__.py").read_text()


@SQLITE_ONLY
def test_export_to_a_folder_then_incrementally(
    server: LiveServer, uploader: str, tmp_path: Path, uv_cache: Path
) -> None:
    other = server.token("alice", "other")
    clients.twine_upload(
        server.upload_url,
        uploader,
        make_wheel(tmp_path / "a", "demo", "1.0.dev1", module_source="V = 1\n"),
    )
    clients.twine_upload(server.upload_url, other, make_wheel(tmp_path / "o", "other", "0.1"))
    dest = tmp_path / "export"
    out = server.cli("export-static", str(dest))
    assert "2 project pages written" in out.stdout and "4 files copied" in out.stdout

    # The exported pages are the server's pages, byte for byte.
    for accept, name in ((JSON, "index.json"), ("text/html", "index.html")):
        page = httpx.get(server.simple_url + "demo/", headers={"Accept": accept}).content
        assert (dest / "simple" / "demo" / name).read_bytes() == page
    entry = httpx.get(server.simple_url + "demo/", headers={"Accept": JSON}).json()["files"][0]
    wheel_path = dest / "simple" / "demo" / entry["url"]
    assert wheel_path.resolve().is_relative_to(dest)
    assert wheel_path.is_file() and Path(str(wheel_path) + ".metadata").is_file()

    with static_host(dest) as host:
        assert installed(tmp_path, f"{host}/simple/", "demo") == "V = 1\n"
        venv = tmp_path / "venv"
        clients.uv("venv", "--python", sys.executable, str(venv), cache=uv_cache)
        clients.uv(
            "pip", "install", "--python", str(venv), "--prerelease=allow",
            "--index-url", f"{host}/simple/", "demo", "other", cache=uv_cache,
        )  # fmt: skip
        check = clients.run([str(venv / "bin" / "python"), "-c", "import demo, other"])
        assert check.returncode == 0
        assert "demo/" in httpx.get(f"{host}/simple/").text

        # A new nightly: only its project is exported again.
        other_page = dest / "simple" / "other" / "index.html"
        other_mtime = other_page.stat().st_mtime_ns
        clients.twine_upload(
            server.upload_url,
            uploader,
            make_wheel(tmp_path / "b", "demo", "1.0.dev2", module_source="V = 2\n"),
        )
        out = server.cli("export-static", str(dest))
        assert "1 project pages written" in out.stdout and "2 files copied" in out.stdout
        assert other_page.stat().st_mtime_ns == other_mtime
        assert installed(tmp_path, f"{host}/simple/", "demo") == "V = 2\n"

        assert "is up to date" in server.cli("export-static", str(dest)).stdout

        server.cli("yank", "demo", "1.0.dev2", "--reason", "broken")
        server.cli("export-static", str(dest))
        assert 'data-yanked="broken"' in httpx.get(f"{host}/simple/demo/").text
        assert installed(tmp_path, f"{host}/simple/", "demo") == "V = 1\n"

        # --full renders everything again, to the same bytes.
        before = (dest / "simple" / "demo" / "index.json").read_bytes()
        out = server.cli("export-static", str(dest), "--full")
        assert "2 project pages written" in out.stdout and "0 files copied" in out.stdout
        assert (dest / "simple" / "demo" / "index.json").read_bytes() == before


@SQLITE_ONLY
def test_labels_are_exported(server: LiveServer, uploader: str, tmp_path: Path) -> None:

    wheel = make_wheel(tmp_path, "demo", "1.1.0rc1", module_source="RC = True\n")
    response = post_wheel(server, uploader, wheel, label="rc")
    assert response.status_code == 200, response.text
    dest = tmp_path / "export"
    server.cli("export-static", str(dest))
    assert not (dest / "simple" / "demo").exists()
    assert (dest / "label" / "rc" / "simple" / "demo" / "index.html").is_file()
    with static_host(dest) as host:
        assert installed(tmp_path, f"{host}/label/rc/simple/", "demo") == "RC = True\n"


@SQLITE_ONLY
def test_export_linking_files_on_the_server(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    clients.twine_upload(
        server.upload_url, uploader, make_wheel(tmp_path, "demo", "1.0", module_source="L = 1\n")
    )
    dest = tmp_path / "export"
    out = server.cli("export-static", str(dest), "--files-url", server.url)
    assert "0 files copied" in out.stdout
    assert not (dest / "files").exists()
    page = (dest / "simple" / "demo" / "index.html").read_text()
    assert f'href="{server.url}/files/' in page
    with static_host(dest) as host:
        assert installed(tmp_path, f"{host}/simple/", "demo") == "L = 1\n"
    # Switching to copied files re-renders every page with relative links.
    out = server.cli("export-static", str(dest))
    assert "1 project pages written" in out.stdout and "2 files copied" in out.stdout
    assert 'href="../../files/' in (dest / "simple" / "demo" / "index.html").read_text()


@pytest.mark.postgres
def test_export_to_a_bucket_serves_pip_directly(
    tmp_path: Path, scaled: Backend, uv_cache: Path
) -> None:
    assert scaled.s3 is not None and scaled.bucket is not None
    with LiveServer(data=tmp_path / "data", backend=scaled) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        clients.twine_upload(
            live.upload_url,
            token,
            make_wheel(tmp_path, "demo", "2.0.dev1", module_source="S = 3\n"),
        )
        dest = f"s3://{scaled.bucket}/export"
        out = live.cli("export-static", dest)
        assert "1 project pages written" in out.stdout
    client = scaled.s3.client()
    head = client.head_object(Bucket=scaled.bucket, Key="export/simple/demo/index.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["CacheControl"] == "max-age=60, must-revalidate"
    head = client.head_object(Bucket=scaled.bucket, Key="export/simple/demo/index.json")
    assert head["ContentType"] == JSON
    # A plain public bucket: no server, no index documents.
    scaled.s3.make_public(scaled.bucket)
    index = f"{scaled.s3.endpoint}/{scaled.bucket}/export/simple/"
    assert installed(tmp_path, index, "demo") == "S = 3\n"
    clients.uv(
        "pip", "install", "--target", str(tmp_path / "uv"), "--prerelease=allow",
        "--index-url", index, "demo", cache=uv_cache,
    )  # fmt: skip
    assert (tmp_path / "uv" / "demo" / "__init__.py").read_text() == "S = 3\n"


@POSTGRES_ONLY
def test_the_server_keeps_an_export_current(
    tmp_path: Path, backend: Backend, uv_cache: Path
) -> None:
    dest = tmp_path / "export"
    with LiveServer(
        data=tmp_path / "data",
        backend=backend,
        env={"NIGHTWHEELS_EXPORT_STATIC": str(dest), "NIGHTWHEELS_EXPORT_INTERVAL": "0.2"},
    ) as live:
        assert wait_for(lambda: (dest / "simple" / "index.html").is_file(), timeout=5)
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheel = make_wheel(tmp_path, "demo", "1.0.dev1", module_source="W = 1\n")
        clients.twine_upload(live.upload_url, token, wheel)
        page = dest / "simple" / "demo" / "index.html"
        assert wait_for(lambda: page.is_file() and wheel.name in page.read_text(), timeout=5)
        # A change by another process (the admin CLI) is exported too.
        live.cli("yank", "demo", "1.0.dev1", "--reason", "old")
        assert wait_for(lambda: 'data-yanked="old"' in page.read_text(), timeout=5)
    with static_host(dest) as host:
        assert installed(tmp_path, f"{host}/simple/", "demo==1.0.dev1") == "W = 1\n"


@SQLITE_ONLY
def test_export_refuses_damaged_bytes_and_bad_destinations(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    clients.twine_upload(server.upload_url, uploader, wheel)
    dest = tmp_path / "export"
    bad = server.cli("export-static", "ftp://example.org/x", check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = server.cli("export-static", str(blocker / "sub"), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr

    import hashlib

    from nightwheels.storage.base import blob_key

    key = blob_key(hashlib.sha256(wheel.read_bytes()).hexdigest())
    backend = server.backend
    if backend.s3 is not None:
        backend.s3.client().put_object(
            Bucket=backend.bucket, Key=f"{backend.prefix}/{key}", Body=b"not the wheel"
        )
    else:
        (server.data / "files" / key).write_bytes(b"not the wheel")
    out = server.cli("export-static", str(dest), check=False)
    assert out.returncode == 1
    assert (
        out.stderr.startswith("error: the stored bytes of files/") and "do not match" in out.stderr
    )
    assert not (dest / "simple" / "demo").exists()
    assert not (dest / ".nightwheels-export.json").exists()


@SQLITE_ONLY
def test_a_quarantined_projects_files_leave_the_export(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    """PEP 792: the export's file URLs of a quarantined project are deleted (a static host
    would serve them to whoever kept one); lifting the quarantine copies them again."""
    from tests.support.access import Accounts, Api

    wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev1")
    assert post_wheel(server, uploader, wheel).status_code == 200
    dest = tmp_path / "export"
    server.cli("export-static", str(dest))
    exported = sorted(p.relative_to(dest) for p in (dest / "files").rglob("*") if p.is_file())
    assert [p.name for p in exported] == [wheel.name, wheel.name + ".metadata"]

    accounts = Accounts(server.data)
    try:
        accounts.user("root", admin=True)
        root = Api(server, accounts.token("root"))
    finally:
        accounts.close()
    assert root.put("/projects/demo/status", {"status": "quarantined"}).status_code == 200
    out = server.cli("export-static", str(dest))
    assert "2 files of quarantined projects deleted" in out.stdout
    assert not any((dest / p).exists() for p in exported)
    page = json.loads((dest / "simple" / "demo" / "index.json").read_text())
    assert page["files"] == [] and page["project-status"] == {"status": "quarantined"}

    assert root.put("/projects/demo/status", {"status": "active"}).status_code == 200
    out = server.cli("export-static", str(dest))
    assert "2 files copied" in out.stdout
    assert all((dest / p).is_file() for p in exported)
