"""`nightwheels upload` against the live server: happy paths, bad input, and failures."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from nightwheels.core.tokens import split_token
from nightwheels.errors import TrustedPublishingFailed
from nightwheels.upload.credentials import (
    EXCHANGE_PATH,
    exchange_oidc_token,
    github_oidc_token,
    resolve,
)
from tests.support.cli import Outcome, nightwheels
from tests.support.proxy import FaultProxy
from tests.support.server import LiveServer, free_port
from tests.support.wheels import make_sdist, make_wheel

VERSION = "2.0.0.dev202611250102"
PLATFORM_TAGS = [
    "py3-none-any",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-musllinux_1_2_aarch64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp313-cp313t-win_amd64",
    "pp310-pypy310_pp73-manylinux_2_28_x86_64",
]
FAST = ["--retries", "2", "--backoff", "0.01"]
PROJECTS = ("rerun", "labels", "mismatch", "flaky", "summary")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server for the tests that do not stop it (each uses its own project)."""
    data = tmp_path_factory.mktemp("shared") / "data"
    data.mkdir()
    live = LiveServer(data=data, env={"NIGHTWHEELS_ALLOW_SDIST": "true"})
    live.start()
    try:
        live.create_user("alice")
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def token(shared: LiveServer) -> str:
    """alice's token, scoped to :data:`PROJECTS`."""
    return shared.token("alice", *PROJECTS)


def upload(
    *args: str, server: str | None = None, token: str | None = None, real: bool = False, **env: str
) -> Outcome:
    extra = {"CI": "true", **env}
    if server:
        extra["NIGHTWHEELS_SERVER"] = server
    if token:
        extra["NIGHTWHEELS_TOKEN"] = token
    return nightwheels("upload", *args, real=real, **extra)


def summary(out: Outcome) -> dict[str, int]:
    match = re.search(r"uploaded (\d+), replaced (\d+), unchanged (\d+), failed (\d+)", out.stdout)
    assert match, out.stdout + out.stderr
    return dict(
        zip(("uploaded", "replaced", "unchanged", "failed"), map(int, match.groups()), strict=True)
    )


def platform_wheels(folder: Path, name: str, version: str = VERSION) -> list[Path]:
    return [
        make_wheel(folder, name, version, tag, module_source=f"T = {tag!r}\n")
        for tag in PLATFORM_TAGS
    ]


def listed(server: LiveServer, project: str = "demo", label: str = "main") -> set[str]:
    base = server.simple_url if label == "main" else f"{server.url}/label/{label}/simple/"
    response = httpx.get(
        f"{base}{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    if response.status_code == 404:
        return set()
    return {f["filename"] for f in response.json()["files"]}


def test_upload_folder_rerun_and_replace(shared: LiveServer, token: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    wheels = platform_wheels(dist, "rerun")
    (dist / "build.log").write_text("not a distribution: ignored")
    # The installed command, as a real process.
    out = upload(str(dist), server=shared.url, token=token, real=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert summary(out) == {"uploaded": 6, "replaced": 0, "unchanged": 0, "failed": 0}
    assert listed(shared, "rerun") == {w.name for w in wheels}
    assert "[6/6]" in out.stdout  # plain numbered lines in CI
    assert f"pip install --pre --upgrade --extra-index-url {shared.simple_url} rerun" in out.stdout

    # Safe to re-run: same bytes are a no-op.
    again = upload(str(dist), server=shared.url, token=token)
    assert summary(again) == {"uploaded": 0, "replaced": 0, "unchanged": 6, "failed": 0}

    # The same static version rebuilt with new bytes replaces (nightly semantics).
    make_wheel(dist, "rerun", VERSION, PLATFORM_TAGS[0], module_source="T = 'new'\n")
    third = upload(str(dist), server=shared.url, token=token)
    assert summary(third) == {"uploaded": 0, "replaced": 1, "unchanged": 5, "failed": 0}
    assert third.returncode == 0


def test_labels_and_sdist(shared: LiveServer, token: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    wheel = make_wheel(dist, "labels", VERSION)
    sdist = make_sdist(dist, "labels", VERSION)
    out = upload(str(dist), "--label", "branch-2.x", server=shared.url, token=token)
    assert summary(out)["uploaded"] == 1  # wheels only by default
    assert listed(shared, "labels", label="branch-2.x") == {wheel.name}
    assert listed(shared, "labels") == set()
    assert f"{shared.url}/label/branch-2.x/simple/ labels" in out.stdout
    out = upload(str(dist), "--sdist", "--label", "main", server=shared.url, token=token)
    assert summary(out) == {"uploaded": 2, "replaced": 0, "unchanged": 0, "failed": 0}
    assert listed(shared, "labels") == {wheel.name, sdist.name}


def test_mismatched_wheel_is_refused_before_anything_is_sent(
    shared: LiveServer, token: str, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    good = make_wheel(dist, "mismatch", VERSION)
    # A static X.Y.0.dev0 build renamed to a nightly: pip 24.1+ and uv would refuse it.
    make_wheel(
        dist,
        "mismatch",
        "2.0.0.dev0",
        "cp312-cp312-win_amd64",
        filename=f"mismatch-{VERSION}-cp312-cp312-win_amd64.whl",
    )
    (dist / "mismatch-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    out = upload(str(dist), server=shared.url, token=token)
    assert out.returncode == 1
    assert "2 files failed the check before upload; nothing was uploaded" in out.stderr
    assert (
        f"mismatch-{VERSION}-cp312-cp312-win_amd64.whl: the filename says version {VERSION}"
        in out.stderr
    )
    assert "nightwheels build" in out.stderr  # the fix
    assert "mismatch-1.0-py3-none-any.whl: not a valid zip archive" in out.stderr
    assert listed(shared, "mismatch") == set()
    assert good.exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "no wheels (.whl) in"),
        ("sdist-only", "sdists are uploaded only with --sdist"),
        ("missing", "does not exist"),
        ("no-server", "no server given"),
        ("no-token", "no token given"),
        ("bad-server", "is not an http(s) URL"),
        ("bad-label", "is not a valid label"),
    ],
)
def test_refuses_without_files_server_or_token(tmp_path: Path, setup: str, message: str) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    args = [str(dist)]
    server: str | None = "http://127.0.0.1:9"
    token: str | None = "nwt_0123456789ab_secret"
    if setup != "empty":
        make_wheel(dist, "demo", VERSION)
    if setup == "sdist-only":
        (dist / "demo-1.0-py3-none-any.whl").unlink(missing_ok=True)
        for p in dist.glob("*.whl"):
            p.unlink()
        make_sdist(dist, "demo", VERSION)
    if setup == "missing":
        args = [str(tmp_path / "nowhere")]
    if setup == "no-server":
        server = None
    if setup == "no-token":
        token = None
    if setup == "bad-server":
        server = "ftp://example"
    if setup == "bad-label":
        args += ["--label", "Not Valid"]
    out = upload(*args, server=server, token=token)
    assert message in out.stderr, out.stderr
    assert out.returncode in (1, 2)
    assert out.returncode == (1 if setup == "bad-label" else 2)
    assert "Traceback" not in out.stderr


def test_server_500_for_one_file(shared: LiveServer, token: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    wheels = platform_wheels(dist, "flaky")
    broken, flaky = wheels[1].name, wheels[2].name
    with FaultProxy(shared.url, fail_always={broken: 500}, fail_first={flaky: 1}) as proxy:
        out = upload(str(dist), *FAST, server=proxy.url, token=token)
    assert out.returncode == 1
    assert summary(out) == {"uploaded": 5, "replaced": 0, "unchanged": 0, "failed": 1}
    # The six went as one batch, which the broken file failed; then each went alone.
    assert proxy.paths["/legacy/batch/"] == 1
    assert proxy.paths["/legacy/"] == 5 + 2
    assert proxy.seen[broken] == 3  # first try (in the batch) + 2 retries
    assert proxy.seen[flaky] == 2  # failed once, then went through
    assert (
        f"error: {broken}: server error (HTTP 500): injected failure (after 3 attempts)"
        in out.stderr
    )
    assert f"retry     {flaky}" in out.stdout
    assert listed(shared, "flaky") == {w.name for w in wheels} - {broken}


def test_server_down(tmp_path: Path) -> None:
    """Nothing listens there: one line naming the cause and the fix, no retries (issue 16.5)."""
    dist = tmp_path / "dist"
    platform_wheels(dist, "demo")
    server = f"http://127.0.0.1:{free_port()}"
    out = upload(str(dist), "--jobs", "2", server=server, token="nwt_0123456789ab_secret")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == (
        f"error: nothing was uploaded: cannot reach the server at {server}: cannot connect "
        "(Connection refused); check --server or NIGHTWHEELS_SERVER, and that the server is "
        "running\n"
    )


def test_bad_token_is_one_line(shared: LiveServer, tmp_path: Path) -> None:
    """Each file used to be reported twice (issue 16.5): now the cause and the fix, once."""
    dist = tmp_path / "dist"
    platform_wheels(dist, "summary")
    out = upload(str(dist), server=shared.url, token="nwt_0123456789ab_not-a-secret")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith(
        f"error: nothing was uploaded: the server at {shared.url} refused the token ("
    )
    assert "set NIGHTWHEELS_TOKEN" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize("batch", ["1", "2"])
def test_server_stops_mid_run(
    server: LiveServer, uploader: str, tmp_path: Path, batch: str
) -> None:
    """Its own server: this test stops it (before the third file: the second request of 2)."""
    dist = tmp_path / "dist"
    wheels = platform_wheels(dist, "demo")

    def stop_at_third(filename: str, n: int) -> None:
        if n == 3:
            server.stop()

    with FaultProxy(server.url, before_upload=stop_at_third) as proxy:
        out = upload(
            str(dist), "--jobs", "1", "--batch", batch, *FAST, server=proxy.url, token=uploader
        )
    assert out.returncode == 1
    counts = summary(out)
    assert counts["uploaded"] == 2 and counts["failed"] == 4
    failed = re.findall(r"^error: (\S+\.whl): (.*)$", out.stderr, re.M)
    assert len(failed) == 4 and {name for name, _ in failed} <= {w.name for w in wheels}
    assert all(
        "server error (HTTP 5" in why or "network error" in why or "not sent" in why
        for _, why in failed
    ), failed


@pytest.mark.parametrize("batch", [1, 2])
def test_token_revoked_mid_run(shared: LiveServer, tmp_path: Path, batch: int) -> None:
    """Revoked before the third file is forwarded: one file per request, or two."""
    doomed = shared.token("alice", f"revoked-{batch}")
    dist = tmp_path / "dist"
    platform_wheels(dist, f"revoked-{batch}")
    prefix = split_token(doomed)
    assert prefix

    def revoke_at_third(filename: str, n: int) -> None:
        if n == 3:
            shared.cli("token", "revoke", prefix)

    with FaultProxy(shared.url, before_upload=revoke_at_third) as proxy:
        out = upload(
            str(dist), "--jobs", "1", "--batch", str(batch), *FAST, server=proxy.url, token=doomed
        )
    assert out.returncode == 1
    assert summary(out) == {"uploaded": 2, "replaced": 0, "unchanged": 0, "failed": 4}
    refused = "the server refused the token: token 'upload' was revoked"
    assert out.stderr.count(f".whl: {refused}") == batch  # the files of the refused request
    assert out.stderr.count("not sent: the server refused the token") == 4 - batch
    assert sum(proxy.seen.values()) == 2 + batch  # nothing sent after the refusal
    assert len(listed(shared, f"revoked-{batch}")) == 2


def test_batches_by_default_and_legacy_when_the_server_has_none(
    shared: LiveServer, token: str, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    wheels = platform_wheels(dist, "summary", "0.3.dev1")
    with FaultProxy(shared.url) as proxy:
        out = upload(str(dist), "--jobs", "2", server=proxy.url, token=token)
    assert out.returncode == 0, out.stderr
    assert dict(proxy.paths) == {"/legacy/batch/": 1}  # six small files: one request
    assert listed(shared, "summary") >= {w.name for w in wheels}

    # An index without the batch endpoint (an older nightwheels): one file per request.
    old = platform_wheels(tmp_path / "old", "summary", "0.3.dev2")
    routes = {"/legacy/batch/": lambda *_: (404, {"error": "not-found", "message": "Not Found"})}
    with FaultProxy(shared.url, routes=routes) as proxy:
        out = upload(str(tmp_path / "old"), "--jobs", "1", server=proxy.url, token=token)
    assert out.returncode == 0, out.stderr
    assert summary(out) == {"uploaded": 6, "replaced": 0, "unchanged": 0, "failed": 0}
    assert dict(proxy.paths) == {"/legacy/batch/": 1, "/legacy/": 6}
    assert listed(shared, "summary") >= {w.name for w in old}


def test_what_the_client_does_with_each_batch_answer(
    shared: LiveServer, token: str, tmp_path: Path
) -> None:
    """A file marked as a transient failure is sent again alone; a batch refused as too
    large (a proxy's body limit) or answered unreadably is sent file by file."""

    def forward(headers: dict[str, str], body: bytes) -> httpx.Response:
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        return httpx.post(f"{shared.url}/legacy/batch/", headers=keep, content=body, timeout=60)

    def second_is_busy(method: str, path: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        answer = forward(headers, body).json()  # recorded by the server, then said busy
        answer["results"][1] = {
            "outcome": "failed", "filename": answer["results"][1]["filename"],
            "status": 503, "error": "unavailable", "message": "storage busy",
        }  # fmt: skip
        return 200, answer

    cases = {
        "busy": second_is_busy,
        "too large": lambda *_: (413, {"error": "too-large", "message": "body too large"}),
        "unreadable": lambda *_: (200, {"unexpected": True}),
    }
    for i, (case, route) in enumerate(cases.items()):
        folder = tmp_path / case
        wheels = platform_wheels(folder, "summary", f"0.4.dev{i}")
        with FaultProxy(shared.url, routes={"/legacy/batch/": route}) as proxy:
            out = upload(str(folder), *FAST, server=proxy.url, token=token)
        assert out.returncode == 0, (case, out.stderr)
        assert listed(shared, "summary") >= {w.name for w in wheels}
        assert proxy.paths["/legacy/batch/"] == 1, case
        if case == "busy":  # the one file again, alone: the server has it already
            assert proxy.paths["/legacy/"] == 1
            assert summary(out) == {"uploaded": 5, "replaced": 0, "unchanged": 1, "failed": 0}
            assert "server error (HTTP 503): storage busy" in out.stdout  # the retry line
        else:
            assert proxy.paths["/legacy/"] == 6, case
            assert summary(out)["uploaded"] == 6
            assert "one by one" in out.stdout


def test_forbidden_project_fails_that_file_only(
    shared: LiveServer, token: str, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    make_wheel(dist, "summary", "0.1.dev1")
    other = make_wheel(dist, "other", VERSION)
    out = upload(str(dist), server=shared.url, token=token)
    assert out.returncode == 1
    assert summary(out) == {"uploaded": 1, "replaced": 0, "unchanged": 0, "failed": 1}
    assert (
        f"error: {other.name}: refused (HTTP 403): token 'upload' may not upload to 'other'"
        in out.stderr
    )


def test_expiring_token_warning_is_shown(shared: LiveServer, tmp_path: Path) -> None:
    token = shared.token("alice", "expiring", expires="3d")
    dist = tmp_path / "dist"
    platform_wheels(dist, "expiring")
    out = upload(str(dist), server=shared.url, token=token, GITHUB_ACTIONS="true")
    assert out.returncode == 0
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and re.search(r"expires in [23] days", warnings[0])
    assert "::warning title=nightwheels::token 'upload' expires" in out.stdout
    assert token not in out.stdout + out.stderr


def test_github_step_summary(shared: LiveServer, token: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    make_wheel(dist, "summary", VERSION)
    step_summary = tmp_path / "summary.md"
    out = upload(
        str(dist),
        server=shared.url,
        token=token,
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(step_summary),
    )
    assert out.returncode == 0
    assert "| 1 | 0 | 0 | 0 |" in step_summary.read_text()


def test_trusted_publishing_flow(shared: LiveServer, tmp_path: Path) -> None:
    """OIDC token from a loopback stand-in for GitHub, exchanged at a stand-in endpoint.

    The stand-ins sit in the proxy in front of the live server; the upload itself goes
    through to the live server with the exchanged token.
    """
    shared.create_user("ci")
    upload_token = shared.token("ci", "trusted")
    calls: list[tuple[str, str, str]] = []

    def oidc(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        calls.append(("oidc", path, auth))
        return 200, {"value": "header.claims.signature"}

    def exchange(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, object]:
        token = json.loads(body)["token"]
        calls.append(("exchange", path, token))
        if token != "header.claims.signature":
            return 401, {"error": "unauthenticated", "message": "bad OIDC token"}
        return 200, {"token": upload_token, "expires_at": "2026-11-25T02:00:00Z"}

    routes = {"/token": oidc, EXCHANGE_PATH: exchange}
    with FaultProxy(shared.url, routes=routes) as proxy:
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{proxy.url}/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-request-token",
            "GITHUB_ACTIONS": "true",
        }
        assert github_oidc_token(env) == "header.claims.signature"
        assert calls[0] == (
            "oidc",
            "/token?api-version=2.0&audience=nightwheels",
            "Bearer runtime-request-token",
        )
        creds = resolve(proxy.url, None, env)
        assert creds.how == "trusted publishing" and creds.token == upload_token
        assert calls[-1] == ("exchange", EXCHANGE_PATH, "header.claims.signature")
        assert upload_token not in repr(creds)
        with pytest.raises(TrustedPublishingFailed, match="refused \\(HTTP 401\\): bad OIDC token"):
            exchange_oidc_token(proxy.url, "forged")

        dist = tmp_path / "dist"
        wheel = make_wheel(dist, "trusted", VERSION)
        out = upload(str(dist), server=proxy.url, **env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "using a short-lived token from trusted publishing" in out.stdout
        assert upload_token not in out.stdout + out.stderr
        assert listed(shared, "trusted") == {wheel.name}

    # An OIDC endpoint that answers without a token: a clear message, exit 2.
    out = upload(
        str(dist),
        server=shared.url,
        **env | {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{shared.url}/-/health?x=1"},
    )
    assert out.returncode == 2
    # No id-token permission in GitHub Actions: say how to get one.
    no_perm = upload(str(dist), server=shared.url, GITHUB_ACTIONS="true")
    assert no_perm.returncode == 2 and "id-token: write" in no_perm.stderr


def test_redirect_and_cleartext_warnings(tmp_path: Path) -> None:
    """A server that redirects uploads is named; a token over plain http to a remote host is warned."""
    from nightwheels.upload.credentials import is_cleartext_remote

    assert is_cleartext_remote("http://nightlies.example.org")
    assert not is_cleartext_remote("https://nightlies.example.org")
    assert not is_cleartext_remote("http://127.0.0.1:8000")

    dist = tmp_path / "dist"
    make_wheel(dist, "demo", VERSION)
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(308)
            self.send_header("Location", "https://nightlies.example.org/legacy/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    stand_in = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    try:
        out = upload(
            str(dist),
            server=f"http://127.0.0.1:{stand_in.server_address[1]}",
            token="nwt_0123456789ab_secret",
        )
    finally:
        stand_in.shutdown()
        stand_in.server_close()
    assert out.returncode == 1
    assert "redirected the upload to https://nightlies.example.org/legacy/" in out.stderr
    assert "plain http" not in out.stderr  # loopback


@pytest.mark.parametrize("whole_body", [1 << 30, 1000])
def test_multipart_body_is_what_the_server_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_body: int
) -> None:
    """One buffer for small files, streamed chunks for large ones: the server reads both."""
    import asyncio

    from nightwheels.server.multipart import parse_upload
    from nightwheels.storage.staging import StagingFile
    from nightwheels.upload import client

    monkeypatch.setattr(client, "WHOLE_BODY", whole_body)
    monkeypatch.setattr(client, "CHUNK", 700)
    payload = bytes(range(256)) * 20
    wheel = tmp_path / 'odd"name.whl'
    wheel.write_bytes(payload)
    fields = [(":action", "file_upload"), ("label", "main"), ("label", "nightly ü")]
    with wheel.open("rb") as stream:
        content_type, length, body = client.multipart_body(fields, wheel.name, stream, len(payload))
        chunks = [body] if isinstance(body, bytes) else list(body)
    assert isinstance(body, bytes) == (whole_body > len(payload))
    assert sum(map(len, chunks)) == length

    async def stream_chunks() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    parsed = asyncio.run(
        parse_upload(content_type, stream_chunks(), lambda: StagingFile(tmp_path / "tmp", 1 << 20))
    )
    assert parsed.fields == {":action": ["file_upload"], "label": ["main", "nightly ü"]}
    assert parsed.filename == "odd%22name.whl"
    assert parsed.staged is not None and parsed.staged.path.read_bytes() == payload


def test_batch_body_is_what_the_server_parses(tmp_path: Path) -> None:
    """Several forms in one body, each file closing its form: the server splits them back."""
    import asyncio

    from nightwheels.server.multipart import parse_batch
    from nightwheels.storage.staging import StagingFile
    from nightwheels.upload import client
    from nightwheels.upload.files import check_distribution

    wheels = platform_wheels(tmp_path / "dist", "batchbody")[:3]
    dists = [check_distribution(w) for w in wheels]
    forms = [([("name", d.name), ("label", f"l{i}")], d) for i, d in enumerate(dists)]
    content_type, body = client.batch_body(forms)

    async def halves() -> AsyncIterator[bytes]:  # split mid-part, as a network would
        yield body[: len(body) // 2]
        yield body[len(body) // 2 :]

    parsed = asyncio.run(
        parse_batch(
            content_type,
            halves(),
            lambda: StagingFile(tmp_path / "tmp", 1 << 20),
            max_total=1 << 20,
        )
    )
    assert [p.filename for p in parsed] == [w.name for w in wheels]
    assert [p.fields for p in parsed] == [
        {"name": ["batchbody"], "label": [f"l{i}"]} for i in range(3)
    ]
    assert [p.staged.path.read_bytes() for p in parsed if p.staged] == [
        w.read_bytes() for w in wheels
    ]
