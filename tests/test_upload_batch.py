"""``POST /legacy/batch/``: several legacy forms in one request, each file answered on its own.

Driven on the live server with a multipart encoder of the tests' own (not the client's),
so the server is checked against the format, not against the code that writes it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nightwheels.services import serials
from tests.support.backends import BACKENDS, open_backend
from tests.support.consistency import index_problems
from tests.support.server import LiveServer
from tests.support.uploads import encode_parts, legacy_form, post_batch
from tests.support.wheels import make_wheel, metadata_text

VERSION = "1.0.dev202612010000"
LIMIT = 200_000  # the server's max_upload_size: per file, and per batch


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("batch") / "data"
    data.mkdir()
    with open_backend(request) as backend:
        server = LiveServer(
            data=data,
            env={"NIGHTWHEELS_MAX_UPLOAD_SIZE": str(LIMIT), "NIGHTWHEELS_ALLOW_REPLACE": "false"},
            backend=backend,
        )
        server.start()
        try:
            server.create_user("alice")
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def token(live: LiveServer) -> str:
    return live.token("alice", "batch-a", "batch-b", "batch-quota")


def index_serial(live: LiveServer) -> int:
    return live.admin(serials.current)


def listed(live: LiveServer, project: str) -> set[str]:
    response = httpx.get(
        f"{live.simple_url}{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    return {f["filename"] for f in response.json()["files"]} if response.is_success else set()


def no_leftovers(live: LiveServer) -> None:
    """No staged bytes left behind; every row's blobs stored with their digests."""
    assert live.tmp_files() == []
    services = live.backend.services(live.data)
    try:
        assert index_problems(services) == []
    finally:
        services.close()


def test_each_file_is_answered_on_its_own(live: LiveServer, token: str, tmp_path: Path) -> None:
    a = [
        make_wheel(tmp_path, "batch-a", VERSION, tag)
        for tag in ("py3-none-any", "cp312-cp312-win_amd64", "cp312-cp312-musllinux_1_2_x86_64")
    ]
    b = make_wheel(tmp_path, "batch-b", VERSION)
    outsider = make_wheel(tmp_path, "outsider", VERSION)
    renamed = make_wheel(
        tmp_path / "bad",
        "batch-a",
        VERSION,
        "cp311-cp311-win_amd64",
        metadata=metadata_text("batch-a", "1.0.dev0"),
    )
    before = index_serial(live)
    parts = [
        *legacy_form(a[0]),
        *legacy_form(outsider),
        *legacy_form(a[1]),
        *legacy_form(renamed),
        *legacy_form(b),
        *legacy_form(a[2], sha256_digest="0" * 64),
        *legacy_form(a[0]),  # twice in one request
        *legacy_form(a[1], **{":action": "remove"}),
    ]
    response = post_batch(live, token, parts)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["filename"], r["outcome"]) for r in results] == [
        (a[0].name, "uploaded"),
        (outsider.name, "failed"),
        (a[1].name, "uploaded"),
        (renamed.name, "failed"),
        (b.name, "uploaded"),
        (a[2].name, "failed"),
        (a[0].name, "failed"),
        (a[1].name, "failed"),
    ]
    failed = [r for r in results if r["outcome"] == "failed"]
    assert [(r["status"], r["error"]) for r in failed] == [
        (403, "forbidden"),
        (400, "invalid-metadata"),
        (400, "digest-mismatch"),
        (400, "invalid-request"),
        (400, "invalid-request"),
    ], failed
    assert "may not upload to 'outsider'" in failed[0]["message"]
    assert "pip 24.1+" in failed[1]["message"]
    assert "appears twice" in failed[3]["message"]
    assert "unsupported :action 'remove'" in failed[4]["message"]
    assert results[0]["project"] == "batch-a" and results[0]["labels"] == {"main": "uploaded"}
    assert listed(live, "batch-a") == {a[0].name, a[1].name}
    assert listed(live, "batch-b") == {b.name}
    assert index_serial(live) == before + 2  # one change per project, not one per file
    no_leftovers(live)

    # Again: the same bytes are unchanged, and nothing changes.
    again = post_batch(live, token, [*legacy_form(a[0]), *legacy_form(b)])
    assert [r["outcome"] for r in again.json()["results"]] == ["unchanged", "unchanged"]
    assert index_serial(live) == before + 2

    # New bytes under a live filename, on an index that does not allow replacing: refused,
    # and the other file of the batch goes through.
    changed = make_wheel(tmp_path / "new", "batch-a", VERSION, module_source="x = 2\n")
    c = make_wheel(tmp_path, "batch-a", VERSION, "cp313-cp313-win_amd64")
    answer = post_batch(live, token, [*legacy_form(changed), *legacy_form(c)]).json()["results"]
    assert [(r["outcome"], r.get("status")) for r in answer] == [
        ("failed", 409),
        ("uploaded", None),
    ]
    assert "does not allow replacing" in answer[0]["message"]
    no_leftovers(live)


def test_quota_counts_the_batch(live: LiveServer, token: str, tmp_path: Path) -> None:
    wheels = [
        make_wheel(tmp_path, "batch-quota", VERSION, tag, payload=bytes(range(256)) * 40)
        for tag in ("py3-none-any", "cp312-cp312-win_amd64", "cp313-cp313-win_amd64")
    ]
    size = wheels[0].stat().st_size
    live.cli("retention", "set", "batch-quota", "--quota", str(2 * size + size // 2))
    results = post_batch(live, token, [p for w in wheels for p in legacy_form(w)]).json()["results"]
    assert [r["outcome"] for r in results] == ["uploaded", "uploaded", "failed"]
    assert results[2]["status"] == 413 and "over its quota" in results[2]["message"]
    assert listed(live, "batch-quota") == {wheels[0].name, wheels[1].name}
    no_leftovers(live)


def test_whole_request_refusals(live: LiveServer, token: str, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "batch-b", "2.0.dev1")
    form = legacy_form(wheel)

    anonymous = httpx.post(f"{live.url}/legacy/batch/", content=b"", timeout=30)
    assert anonymous.status_code == 401

    trailing = post_batch(live, token, [*form, ("label", "main")])
    assert trailing.status_code == 400
    assert "fields after the last file" in trailing.json()["message"]

    empty = post_batch(live, token, form[:-1])
    assert empty.status_code == 400 and "no 'content' file" in empty.json()["message"]

    big = [
        make_wheel(tmp_path / "big", "batch-b", "2.0.dev2", tag, payload=random.randbytes(80_000))
        for tag in ("py3-none-any", "cp312-cp312-win_amd64", "cp313-cp313-win_amd64")
    ]
    assert all(LIMIT / 3 < w.stat().st_size < LIMIT for w in big)  # each fits, not all
    too_large = post_batch(live, token, [p for w in big for p in legacy_form(w)])
    assert too_large.status_code == 413, too_large.text
    assert "send fewer at a time" in too_large.json()["message"]

    many = [
        part
        for i in range(201)
        for part in [*legacy_form(wheel)[:-1], ("content", (f"f{i}.whl", b"x"))]
    ]
    content_type, body = encode_parts(many)
    response = httpx.post(
        f"{live.url}/legacy/batch/",
        auth=("__token__", token),
        headers={"Content-Type": content_type, "Accept": "application/json"},
        content=body,
        timeout=60,
    )
    assert response.status_code == 400 and "more than 200 files" in response.json()["message"]
    assert listed(live, "batch-b") <= {"batch_b-1.0.dev202612010000-py3-none-any.whl"}
    no_leftovers(live)


def test_concurrent_batches_of_the_same_files(live: LiveServer, token: str, tmp_path: Path) -> None:
    """Four jobs send the same nightly at the same moment: each file is recorded once, by
    one of them, and found unchanged by the others; nobody gets an error."""
    import threading

    wheels = [
        make_wheel(tmp_path, "batch-b", "4.0.dev1", f"cp3{minor}-cp3{minor}-{plat}")
        for minor in range(10, 14)
        for plat in ("win_amd64", "macosx_11_0_arm64", "linux_x86_64")
    ]
    parts = [p for w in wheels for p in legacy_form(w)]
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def send() -> None:
        start.wait()
        answers.append(post_batch(live, token, parts))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    outcomes = [[r["outcome"] for r in a.json()["results"]] for a in answers]
    for i, wheel in enumerate(wheels):
        assert sorted(o[i] for o in outcomes) == ["unchanged"] * 3 + ["uploaded"], wheel.name
    assert listed(live, "batch-b") >= {w.name for w in wheels}
    no_leftovers(live)
