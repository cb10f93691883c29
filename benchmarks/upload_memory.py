"""A 1 GiB upload keeps the server's memory flat: bytes stream to disk, hashed as they arrive.

Reports the server's peak RSS (VmHWM) before and after the upload, and the throughput.

    .venv/bin/python benchmarks/upload_memory.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import LiveServer
from tests.support.wheels import metadata_text


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def big_wheel(directory: Path, size_mib: int) -> Path:
    path = directory / "big-1.0.dev1-py3-none-any.whl"
    chunk = os.urandom(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr("big-1.0.dev1.dist-info/METADATA", metadata_text("big", "1.0.dev1"))
        with zf.open("big/blob.bin", "w", force_zip64=True) as member:
            for _ in range(size_mib):
                member.write(chunk)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nw-upload-"))
    server = LiveServer(data=tmp / "data")
    server.data.mkdir()
    try:
        wheel = big_wheel(tmp, args.size_mib)
        digest = hashlib.sha256()
        with open(wheel, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        server.start()
        server.create_user("big")
        token = server.token("big", "big")
        assert server.process is not None
        before = peak_rss_mib(server.process.pid)
        start = time.perf_counter()
        with open(wheel, "rb") as fh:
            response = httpx.post(
                server.upload_url,
                auth=("__token__", token),
                timeout=600,
                data={
                    ":action": "file_upload",
                    "name": "big",
                    "version": "1.0.dev1",
                    "sha256_digest": digest.hexdigest(),
                },
                files={"content": (wheel.name, fh, "application/octet-stream")},
            )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.text
        after = peak_rss_mib(server.process.pid)
        result = {
            "size_mib": args.size_mib,
            "peak_rss_before_mib": round(before, 1),
            "peak_rss_after_mib": round(after, 1),
            "seconds": round(elapsed, 1),
            "mib_per_s": round(args.size_mib / elapsed, 1),
        }
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    (Path(__file__).parent / "results" / "upload_memory.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
