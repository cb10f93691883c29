"""A wheel whose central directory lists 3,000,000 members is refused from its end record.

Writes the issue's wheel (a real small wheel plus 3,000,000 central-directory entries,
171 MB) and measures, in the same run:

- in-process: the time and the peak Python allocation of ``read_wheel_metadata`` on it,
  against ``zipfile.ZipFile`` opening a tenth of it (300,000 entries: what the old code
  did before it could count the members);
- live server: the POST of the whole wheel (refused), against the POST of the same
  bytes with a wrong digest (refused before the archive is opened: the transfer and
  staging cost alone), with the server's peak RSS (VmHWM) before and after.

    .venv/bin/python benchmarks/zip_directory.py [--entries 3000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nightwheels.core import dists
from nightwheels.errors import InvalidDistribution
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel

HEADER = struct.Struct("<4s4B4HL2L5H2L")


def write_wheel(path: Path, small: bytes, extra: int) -> int:
    """``small`` with ``extra`` more central-directory entries, written in chunks."""
    eocd = small.rfind(b"PK\x05\x06")
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4s4H2LH", small, eocd)
    header = HEADER.pack(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0)
    with open(path, "wb") as out:
        out.write(small[:eocd])
        for start in range(0, extra, 100_000):
            out.write(
                b"".join(
                    header + b"pad/%07d" % i for i in range(start, min(extra, start + 100_000))
                )
            )
        end64 = out.tell()
        entries, size = count + extra, cd_size + extra * (HEADER.size + 11)
        out.write(
            struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size,
                        cd_offset)
            + struct.pack("<4sLQL", b"PK\x06\x07", 0, end64, 1)
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                          0xFFFFFFFF, 0)
        )  # fmt: skip
        return out.tell()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def in_process(path: Path) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        dists.read_wheel_metadata(path)
    except InvalidDistribution as exc:
        message = str(exc)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": elapsed, "peak_mib": peak / 2**20, "message": message}  # type: ignore[dict-item]


def zipfile_reference(path: Path) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    with zipfile.ZipFile(path) as archive:
        members = len(archive.infolist())
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"members": members, "seconds": elapsed, "peak_mib": peak / 2**20}


def post(server: LiveServer, token: str, path: Path, digest: str) -> tuple[int, str, float]:
    form = {":action": "file_upload", "name": "demo", "version": "1.0.dev1",
            "filetype": "bdist_wheel", "sha256_digest": digest}  # fmt: skip
    started = time.perf_counter()
    with open(path, "rb") as fh:
        response = httpx.post(
            server.upload_url,
            auth=("__token__", token),
            data=form,
            files={"content": (path.name, fh, "application/octet-stream")},
            timeout=300,
        )
    return response.status_code, response.text.strip(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=3_000_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nw-zipdir-"))
    try:
        small = make_wheel(tmp / "small", "demo", "1.0.dev1").read_bytes()
        wheel = tmp / "demo-1.0.dev1-py3-none-any.whl"
        size = write_wheel(wheel, small, args.entries)
        tenth = tmp / "tenth.whl"
        write_wheel(tenth, small, args.entries // 10)
        result: dict[str, object] = {"entries": args.entries + 4, "bytes": size}
        result["read_wheel_metadata"] = in_process(wheel)
        result["zipfile_tenth_reference"] = zipfile_reference(tenth)
        with LiveServer(data=tmp / "data") as server:
            server.create_user("alice")
            token = server.token("alice", "demo")
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            before = peak_rss_mib(server.process.pid)  # type: ignore[union-attr]
            ref = post(server, token, wheel, "0" * 64)
            status, text, seconds = post(server, token, wheel, digest)
            after = peak_rss_mib(server.process.pid)  # type: ignore[union-attr]
            result["server"] = {
                "status": status,
                "message": text,
                "seconds": seconds,
                "digest_refusal_reference_seconds": ref[2],
                "zip_check_seconds": seconds - ref[2],
                "vmhwm_before_mib": before,
                "vmhwm_after_mib": after,
            }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
