"""Hostile input against the live upload endpoint: always a 4xx, nothing staged, memory bounded.

One server for the module (hypothesis runs many examples against it); after every case
the staging directory must be empty, nothing may be listed, and the server's peak RSS
(VmHWM) must stay within a fixed budget of what it was after start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server import LiveServer, wait_for
from tests.support.wheels import make_wheel

BOUNDARY = b"hostileboundary"
# The server may grow a little while it warms up, but never by what an attacker sends.
RSS_BUDGET_KB = 48 * 1024


def peak_rss_kb(server: LiveServer) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, int]]:
    root = tmp_path_factory.mktemp("hostile")
    with LiveServer(data=root / "data", in_thread=False) as server:  # its memory is measured
        server.create_user("alice")
        token = server.token("alice", "demo")
        httpx.get(server.simple_url, timeout=10)  # warm the page cache before the baseline
        yield server, token, peak_rss_kb(server)


def form_part(name: str | bytes, value: bytes, filename: bytes | None = None) -> bytes:
    raw_name = name.encode() if isinstance(name, str) else name
    disposition = b'form-data; name="' + raw_name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return (
        b"--"
        + BOUNDARY
        + b"\r\nContent-Disposition: "
        + disposition
        + b"\r\n\r\n"
        + value
        + b"\r\n"
    )


def upload_body(
    content: bytes,
    filename: bytes = b"demo-1.0.dev1-py3-none-any.whl",
    name: bytes = b"demo",
    version: bytes = b"1.0.dev1",
) -> bytes:
    return (
        form_part(":action", b"file_upload")
        + form_part("name", name)
        + form_part("version", version)
        + form_part("sha256_digest", hashlib.sha256(content).hexdigest().encode())
        + form_part("content", content, filename)
        + b"--"
        + BOUNDARY
        + b"--\r\n"
    )


def post_raw(
    server: LiveServer, token: str, body: bytes, content_type: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY.decode()}"}
    return httpx.post(
        server.upload_url, content=body, headers=headers, auth=("__token__", token), timeout=60
    )


def assert_refused(hostile: tuple[LiveServer, str, int], response: httpx.Response) -> None:
    server, _token, baseline = hostile
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert wait_for(lambda: server.tmp_files() == [], timeout=2), server.tmp_files()
    assert server.blobs() == [], "a blob was stored for a refused upload"
    assert peak_rss_kb(server) - baseline < RSS_BUDGET_KB, "server memory grew with hostile input"


def rezip(
    wheel: Path, changes: dict[str, bytes | None], extra: dict[str, bytes] | None = None
) -> bytes:
    """The wheel's members with some replaced (None: dropped) and some added."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = changes.get(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path, "demo", "1.0.dev1")


META = "demo-1.0.dev1.dist-info/METADATA"


# -- malformed multipart, generated ------------------------------------------------------

_pieces = st.sampled_from(
    [
        b"--" + BOUNDARY + b"\r\n",
        b"--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY,
        b'Content-Disposition: form-data; name="content"; filename="demo-1.0.dev1-py3-none-any.whl"\r\n',
        b'Content-Disposition: form-data; name=":action"\r\n',
        b"Content-Disposition: form-data\r\n",
        b'Content-Disposition: form-data; name="\xff\xfe"\r\n',
        b"Content-Type: application/octet-stream\r\n",
        b"X-" + b"h" * 9000 + b": v\r\n",
        b"\r\n",
        b"\r\n\r\n",
        b"file_upload",
        b"PK\x03\x04",
        b"\x00",
        b"\n",
    ]
)
malformed_bodies = st.lists(
    st.one_of(_pieces, st.binary(max_size=64)), min_size=0, max_size=14
).map(b"".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=malformed_bodies)
def test_generated_malformed_multipart_is_a_4xx(hostile, body: bytes) -> None:
    server, token, _ = hostile
    assert_refused(hostile, post_raw(server, token, body))


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 300,
        "multipart/mixed; boundary=x",
    ],
)
def test_bad_content_types_are_a_4xx(hostile, wheel: Path, content_type: str) -> None:
    server, token, _ = hostile
    body = upload_body(wheel.read_bytes())
    response = post_raw(server, token, body, content_type=content_type)
    assert_refused(hostile, response)


def test_truncated_body_is_a_4xx(hostile, wheel: Path) -> None:
    server, token, _ = hostile
    body = upload_body(wheel.read_bytes())
    for cut in (len(body) // 3, len(body) // 2, len(body) - 30):
        assert_refused(hostile, post_raw(server, token, body[:cut]))


def test_oversized_part_headers_and_too_many_fields(hostile, wheel: Path) -> None:
    server, token, _ = hostile
    huge_header = b"--" + BOUNDARY + b"\r\nX-Pad: " + b"p" * 100_000 + b"\r\n\r\nv\r\n"
    assert_refused(hostile, post_raw(server, token, huge_header + upload_body(wheel.read_bytes())))
    many = b"".join(form_part(f"f{i}", b"v") for i in range(600))
    assert_refused(hostile, post_raw(server, token, many + upload_body(wheel.read_bytes())))
    big_field = form_part("description", b"d" * (2 * 1024 * 1024))
    response = post_raw(server, token, big_field + upload_body(wheel.read_bytes()))
    assert response.status_code == 413
    assert_refused(hostile, response)


# -- filenames and form fields -----------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        b"demo-1.0.dev1-py3-none-any.whl\n",
        b"demo-1.0.dev1-py3-none-any.whl\r",
        b"demo\x1b[31m-1.0.dev1-py3-none-any.whl",
        b"demo-1.0.dev1-py3-none\tany.whl",
        b"demo-1.0.dev1-py3-none-any.whl\x7f",
        b"demo-1.0.dev1-py3-none-any\x00.whl",
        b"demo-1.0.dev1-py3-none-any.whl\xc2\x85",  # NEL
        b"demo-1.0.dev1-py3-none-any.whl\xe2\x80\xae",  # right-to-left override
        b"../../demo-1.0.dev1-py3-none-any.whl",
        b"/etc/demo-1.0.dev1-py3-none-any.whl",
        b"demo-1.0.dev1-py3-none-any.whl\xff",
        b"",
    ],
    ids=repr,
)
def test_filenames_with_control_characters_are_a_4xx(hostile, wheel: Path, filename: bytes) -> None:
    server, token, _ = hostile
    response = post_raw(server, token, upload_body(wheel.read_bytes(), filename=filename))
    assert_refused(hostile, response)
    assert "\x1b" not in response.text, "a control character was echoed back to a terminal"


@pytest.mark.parametrize("field", ["name", "version"])
def test_non_utf8_form_fields_are_a_4xx(hostile, wheel: Path, field: str) -> None:
    server, token, _ = hostile
    values = {"name": b"demo", "version": b"1.0.dev1", field: b"\xff\xfe\xfa"}
    response = post_raw(server, token, upload_body(wheel.read_bytes(), **values))
    assert_refused(hostile, response)
    assert "UTF-8" in response.text


# -- archives ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    ["../evil.py", "demo/../../evil.py", "/etc/evil.py", "..\\evil.py", "C:evil.py", "C:\\evil.py"],
)
def test_zip_with_traversal_entries_is_a_4xx(hostile, wheel: Path, member: str) -> None:
    server, token, _ = hostile
    response = post_raw(server, token, upload_body(rezip(wheel, {}, {member: b"x"})))
    assert_refused(hostile, response)
    assert "traversal" in response.text


def test_compressed_metadata_bomb_is_a_4xx(hostile, wheel: Path) -> None:
    """64 MiB of METADATA in ~64 KiB of deflate: read with a cap, never inflated whole."""
    server, token, _ = hostile
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename == META:
                with zout.open(META, "w", force_zip64=True) as out:
                    out.write(zin.read(info))
                    chunk = b"X-Pad: " + b"a" * (1024 * 1024 - 8) + b"\n"
                    for _ in range(64):
                        out.write(chunk)
            else:
                zout.writestr(info, zin.read(info))
    body = buffer.getvalue()
    assert len(body) < 1024 * 1024
    response = post_raw(server, token, upload_body(body))
    assert_refused(hostile, response)
    assert "larger than" in response.text


def _forge_sizes(archive: bytes, member: str, size: int) -> bytes:
    """Rewrite the declared uncompressed size of ``member`` in the central directory."""
    data = bytearray(archive)
    name = member.encode()
    start = 0
    while (at := data.find(b"PK\x01\x02", start)) != -1:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, size)
        start = at + 4
    return bytes(data)


def test_forged_huge_declared_size_is_a_4xx(hostile, wheel: Path) -> None:
    server, token, _ = hostile
    body = _forge_sizes(wheel.read_bytes(), META, 0xFFFFFFF0)
    assert_refused(hostile, post_raw(server, token, upload_body(body)))


def test_overlapping_members_are_never_a_5xx(
    server: LiveServer, uploader: str, wheel: Path
) -> None:
    """Two central-directory entries sharing one local file (Fifield's non-recursive bomb)."""
    token = uploader
    archive = wheel.read_bytes()
    cd = archive.find(b"PK\x01\x02")
    eocd = archive.rfind(b"PK\x05\x06")
    entries = archive[cd:eocd]
    meta_at = entries.find(b"PK\x01\x02", entries.find(META.encode()) - 46)
    first = entries[meta_at : meta_at + 46 + len(META)]
    twin = first.replace(b"METADATA", b"METADATB")
    count = struct.unpack_from("<H", archive, eocd + 10)[0] + 1
    new_cd = entries + twin
    tail = bytearray(archive[eocd:])
    struct.pack_into("<HHII", tail, 8, count, count, len(new_cd), cd)
    body = archive[:cd] + new_cd + bytes(tail)
    response = post_raw(server, token, upload_body(body))
    # Either refused for the overlap, or the twin is just another member: never a 5xx.
    assert response.status_code < 500, response.text
    assert server.tmp_files() == []


@pytest.mark.server_process  # its memory is measured
def test_nested_zip_bomb_is_not_expanded(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    """A wheel carrying a zip of zips is data: stored as sent, nothing inside is inflated."""
    token, baseline = uploader, peak_rss_kb(server)
    layer = zipfile.ZIP_DEFLATED
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", layer) as z, z.open("zeros.bin", "w") as out:
        for _ in range(32):
            out.write(bytes(1024 * 1024))
    for depth in range(3):
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w", layer) as z:
            for i in range(4):
                z.writestr(f"layer{depth}-{i}.zip", inner.getvalue())
        inner = outer
    nested = make_wheel(tmp_path, "demo", "1.0.dev9", payload=inner.getvalue())
    body = upload_body(nested.read_bytes(), filename=nested.name.encode(), version=b"1.0.dev9")
    response = post_raw(server, token, body)
    assert response.status_code == 200, response.text
    assert peak_rss_kb(server) - baseline < RSS_BUDGET_KB
    assert server.tmp_files() == []
    listed = httpx.get(
        f"{server.simple_url}demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert [f["filename"] for f in listed.json()["files"]] == [nested.name]


def test_non_utf8_metadata_is_a_4xx(hostile, wheel: Path) -> None:
    server, token, _ = hostile
    meta = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0.dev1\nSummary: caf\xe9 \xff\n\n"
    response = post_raw(server, token, upload_body(rezip(wheel, {META: meta})))
    assert_refused(hostile, response)
    assert "UTF-8" in response.text


# -- gigantic request headers -------------------------------------------------------------


def _raw_request(server: LiveServer, head: bytes) -> bytes:
    """Send ``head`` on a socket; return what came back (a reset is not an answer)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        # The server may answer before it has read everything: the answer must still come.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 * 1024 * 1024) + b"\r\n\r\n",
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\n" + b"X-Many: v\r\n" * 200_000 + b"\r\n",
        b"GET /simple/?" + b"q" * (2 * 1024 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
        + b"A" * (1024 * 1024)
        + b"\r\n\r\n",
    ],
    ids=["one-huge-header", "many-headers", "huge-url", "huge-authorization"],
)
def test_gigantic_headers_are_a_4xx_not_a_reset(hostile, head: bytes) -> None:
    server, _token, baseline = hostile
    answer = _raw_request(server, head)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    assert status is not None and 400 <= status < 500, answer[:200]
    assert peak_rss_kb(server) - baseline < RSS_BUDGET_KB
    assert httpx.get(f"{server.url}/-/health", timeout=5).status_code == 200


def test_slow_headers_get_a_408(tmp_path: Path) -> None:
    """A client dribbling its headers (slowloris) is answered 408 and let go."""
    with LiveServer(data=tmp_path / "data", env={"NIGHTWHEELS_HEAD_TIMEOUT": "1.5"}) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            answer = b""
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(40):
                    sock.sendall(b"X-a: b\r\n")
                    time.sleep(0.1)
            while chunk := sock.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            assert time.monotonic() - started < 8
        # An upload that takes longer than the head timeout is not cut: the timer stops
        # once the headers are in.
        server.create_user("alice")
        token = server.token("alice", "demo")
        wheel = make_wheel(tmp_path, "demo", "1.0.dev1")
        body = upload_body(wheel.read_bytes())

        def slow() -> Iterator[bytes]:
            for i in range(0, len(body), 32):
                time.sleep(0.1)
                yield body[i : i + 32]

        assert len(body) // 32 * 0.1 > 2 * 1.5
        response = httpx.post(
            server.upload_url,
            content=slow(),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}"},
            auth=("__token__", token),
            timeout=60,
        )
        assert response.status_code == 200, response.text


def test_a_wheel_listing_millions_of_members_is_refused_from_its_end_record(
    hostile, wheel: Path
) -> None:
    """The end record claims 3,000,004 members: refused before the directory is parsed
    (tests/test_wheelzip.py proves the bound on a real 171 MB directory)."""
    server, token, _ = hostile
    archive = wheel.read_bytes()
    eocd = archive.rfind(b"PK\x05\x06")
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4s4H2LH", archive, eocd)
    entries = count + 3_000_000
    forged = (
        archive[:eocd]
        + struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                      cd_size + 57 * 3_000_000, cd_offset)
        + struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd, 1)
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    )  # fmt: skip
    response = post_raw(server, token, upload_body(forged))
    assert_refused(hostile, response)
    assert "lists 3000004 members; the limit is 200000" in response.text
