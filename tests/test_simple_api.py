"""The Simple Repository API: PEP 503/691/700/658/714/592/708 details, caching, negotiation."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import BACKENDS, open_backend
from tests.support.server import LiveServer, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"


def upload(server: LiveServer, token: str, wheel: Path, name: str, version: str) -> httpx.Response:
    response = post_wheel(server, token, wheel, name=name, version=version)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module", params=BACKENDS)
def index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("simple")
    with open_backend(request) as backend, LiveServer(data=tmp / "data", backend=backend) as live:
        live.create_user("alice")
        token = live.token("alice", "Zope.Interface", "plain")
        for version, tag in [
            ("5.0.dev1", "py3-none-any"),
            ("5.0.dev2", "cp312-cp312-manylinux_2_17_x86_64"),
        ]:
            wheel = make_wheel(
                tmp / version, "zope.interface", version, tag, requires_python=">=3.9,<4"
            )
            upload(live, token, wheel, "zope.interface", version)
        upload(live, token, make_wheel(tmp / "p", "plain", "1.0"), "plain", "1.0")
        yield live, token


def get(live: LiveServer, path: str, **headers: str) -> httpx.Response:
    return httpx.get(live.url + path, headers=headers)


def test_json_page_has_pep700_and_pep658_fields(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    response = get(live, "/simple/zope-interface/", Accept=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    doc = response.json()
    assert doc["name"] == "zope-interface"
    assert doc["meta"]["api-version"] == "1.4"
    assert "tracks" not in doc["meta"]  # PEP 708 (rejected): off unless a server turns it on
    assert doc["versions"] == ["5.0.dev1", "5.0.dev2"]
    assert len(doc["files"]) == 2
    for f in doc["files"]:
        assert set(f) >= {
            "filename",
            "url",
            "hashes",
            "size",
            "upload-time",
            "requires-python",
            "core-metadata",
            "yanked",
        }
        assert f["upload-time"].endswith("Z")
        assert f["requires-python"] == ">=3.9,<4"
        assert len(f["hashes"]["sha256"]) == 64
        assert f["core-metadata"]["sha256"]
        assert f["dist-info-metadata"] == f["core-metadata"]


def test_html_page_escapes_requires_python_and_links_metadata(
    index: tuple[LiveServer, str],
) -> None:
    live, _ = index
    response = get(live, "/simple/zope-interface/")
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert 'data-requires-python="&gt;=3.9,&lt;4"' in text
    assert 'data-core-metadata="sha256=' in text
    assert '<meta name="pypi:repository-version" content="1.4">' in text
    assert "pypi:tracks" not in text
    assert text.count("#sha256=") == 2


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        (JSON, JSON),
        (HTML, HTML),
        ("text/html", "text/html"),
        (f"{JSON}, {HTML};q=0.1, text/html;q=0.01", JSON),  # what pip sends
        (f"{JSON};q=0.2, {HTML};q=0.9", HTML),
        (f"text/html;q=0.5, {JSON};q=0", "text/html"),
        ("application/*", JSON),
    ],
)
def test_content_negotiation(
    index: tuple[LiveServer, str], accept: str | None, expected: str
) -> None:
    live, _ = index
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(live.url + "/simple/zope-interface/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected


@pytest.mark.parametrize("accept", ["application/xml", f"{JSON};q=0", "image/png, text/plain"])
def test_unservable_accept_is_406(index: tuple[LiveServer, str], accept: str) -> None:
    live, _ = index
    response = get(live, "/simple/zope-interface/", Accept=accept)
    assert response.status_code == 406
    assert "application/vnd.pypi.simple.v1+json" in response.text


def test_format_query_parameter(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    assert get(live, "/simple/zope-interface/?format=json").headers["content-type"] == JSON
    html = httpx.get(live.url + "/simple/zope-interface/", params={"format": HTML})
    assert html.headers["content-type"] == HTML
    assert get(live, "/simple/zope-interface/?format=yaml").status_code == 406


def test_etag_304_and_cache_control(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    first = get(live, "/simple/plain/", Accept=JSON)
    etag = first.headers["etag"]
    assert "must-revalidate" in first.headers["cache-control"]
    again = get(live, "/simple/plain/", Accept=JSON, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    html = get(live, "/simple/plain/")
    assert html.headers["etag"] != etag  # each representation has its own validator
    assert "Accept" in first.headers["vary"]


def test_etag_changes_exactly_when_the_project_changes(
    index: tuple[LiveServer, str], tmp_path: Path
) -> None:
    live, token = index
    other_before = get(live, "/simple/zope-interface/").headers["etag"]
    before = get(live, "/simple/plain/").headers["etag"]
    assert get(live, "/simple/plain/").headers["etag"] == before
    upload(live, token, make_wheel(tmp_path, "plain", "1.1.dev1"), "plain", "1.1.dev1")
    after = get(live, "/simple/plain/")
    assert after.headers["etag"] != before
    assert "plain-1.1.dev1" in after.text
    assert get(live, "/simple/zope-interface/").headers["etag"] == other_before


def test_gzip(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    raw = httpx.get(live.url + "/simple/zope-interface/", headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("content-encoding") == "gzip"
    assert b"Links for zope-interface" in raw.content  # httpx decodes; content is the page
    with httpx.stream(
        "GET", live.url + "/simple/zope-interface/", headers={"Accept-Encoding": "gzip"}
    ) as r:
        body = b"".join(r.iter_raw())
    assert b"Links for" in gzip.decompress(body)


@pytest.mark.parametrize(
    "variant", ["Zope.Interface", "zope_interface", "ZOPE-INTERFACE", "zope.interface"]
)
def test_non_normalised_names_redirect(index: tuple[LiveServer, str], variant: str) -> None:
    live, _ = index
    response = httpx.get(f"{live.url}/simple/{variant}/?format=json", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/simple/zope-interface/?format=json"
    assert httpx.get(f"{live.url}/simple/{variant}/", follow_redirects=True).status_code == 200


def test_missing_trailing_slash_redirects(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    response = httpx.get(f"{live.url}/simple/plain", follow_redirects=False)
    assert response.status_code in (301, 307)


def test_unknown_and_invalid_projects_are_404(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    assert get(live, "/simple/does-not-exist/").status_code == 404
    assert get(live, "/simple/-bad-/").status_code == 404
    assert get(live, "/label/nope/simple/plain/").status_code == 404


def test_project_list(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    doc = get(live, "/simple/", Accept=JSON).json()
    assert [p["name"] for p in doc["projects"]] == ["plain", "zope-interface"]
    assert doc["meta"]["api-version"] == "1.4"
    assert '<a href="plain/">plain</a>' in get(live, "/simple/").text


def test_yank_with_reason(index: tuple[LiveServer, str], tmp_path: Path) -> None:
    live, token = index
    upload(live, token, make_wheel(tmp_path, "plain", "0.9"), "plain", "0.9")

    def yanked() -> object:
        doc = get(live, "/simple/plain/", Accept=JSON).json()
        return next(f for f in doc["files"] if f["filename"].startswith("plain-0.9-"))["yanked"]

    # The CLI is another process: the server sees its change within the serial poll interval.
    live.cli("yank", "plain", "0.9", "--reason", 'broken <"build">')
    assert wait_for(lambda: yanked() == 'broken <"build">', timeout=2)
    assert 'data-yanked="broken &lt;&quot;build&quot;&gt;"' in get(live, "/simple/plain/").text
    live.cli("yank", "plain", "0.9", "--undo")
    assert wait_for(lambda: yanked() is False, timeout=2)
    missing = live.cli("yank", "plain", "7.0", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: project 'plain' has no file matching version 7.0"


def test_files_and_metadata(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    doc = get(live, "/simple/zope-interface/", Accept=JSON).json()
    entry = doc["files"][0]
    url = httpx.URL(live.url + "/simple/zope-interface/").join(entry["url"])
    response = httpx.get(url)
    assert hashlib.sha256(response.content).hexdigest() == entry["hashes"]["sha256"]
    assert int(response.headers["content-length"]) == entry["size"]
    assert httpx.get(url, headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    assert httpx.get(str(url).replace(entry["filename"], "other.whl")).status_code == 404
    assert httpx.get(f"{live.url}/files/zzzz/{entry['filename']}").status_code == 404
    assert httpx.get(f"{live.url}/files/{'0' * 32}/{entry['filename']}").status_code == 404


def test_security_headers_everywhere(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    for path in ("/simple/", "/simple/plain/", "/", "/-/health", "/simple/nope/"):
        response = get(live, path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_health_and_metrics(index: tuple[LiveServer, str]) -> None:
    live, _ = index
    assert get(live, "/-/health").json()["status"] == "ok"
    metrics = get(live, "/-/metrics").text
    assert "nightwheels_projects 2" in metrics
