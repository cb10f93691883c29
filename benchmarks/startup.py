"""From ``nightwheels serve`` to the first 200, on a new and on an existing data directory.

The reference, measured in the same run: the smallest uvicorn server (a one-route ASGI app
in a fresh interpreter), the floor any nightwheels start stands on. ``--before DIR`` also
times another checkout's ``src/`` (e.g. a worktree of an older commit) with this venv.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--before /path/to/old/checkout]

Wall time counts waiting for a busy machine; CPU time (the server process's user + system
time at its first 200) does not, and is the figure to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.clients import clean_env  # noqa: E402
from tests.support.server import free_port  # noqa: E402

REFERENCE_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (robust to a busy machine, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_200(command: list[str], port: int, path: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds from starting ``command`` to the first 200 on ``path``; stops it."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                    pass
            except OSError:
                time.sleep(0.005)
                continue
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200:
                return time.perf_counter() - started, cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def nightwheels(src: Path | None) -> list[str]:
    if src is None:
        return [sys.executable, "-m", "nightwheels"]
    code = f"import sys; sys.path.insert(0, {str(src)!r}); from nightwheels.cli.main import main; main()"
    return [sys.executable, "-c", code]


def measure(runs: int, before: Path | None) -> dict[str, object]:
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def record(name: str, result: tuple[float, float]) -> None:
        wall.setdefault(name, []).append(result[0])
        cpu.setdefault(name, []).append(result[1])

    builds = {"now": None, **({"before": before / "src"} if before else {})}
    for _ in range(runs):
        port = free_port()
        reference = [sys.executable, "-c", REFERENCE_APP, str(port)]
        record("reference_uvicorn", first_200(reference, port, "/", clean_env()))
        for name, src in builds.items():
            tmp = Path(tempfile.mkdtemp(prefix="nw-startup-"))
            try:
                data = tmp / "data"
                for kind in ("new", "existing"):
                    port = free_port()
                    command = [*nightwheels(src), "serve", "--port", str(port), "--data", str(data)]
                    record(f"{name}_{kind}_data", first_200(command, port, "/simple/", clean_env()))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def medians(values: dict[str, list[float]]) -> dict[str, float]:
        return {k: round(statistics.median(v), 3) for k, v in values.items()}

    wall_m, cpu_m = medians(wall), medians(cpu)
    return {
        "runs": runs,
        "load_average": os.getloadavg(),
        "median_wall_seconds": wall_m,
        "median_cpu_seconds": cpu_m,
        "cpu_ratio_to_reference": {
            k: round(v / cpu_m["reference_uvicorn"], 2) for k, v in cpu_m.items()
        },
        "wall_ratio_to_reference": {
            k: round(v / wall_m["reference_uvicorn"], 2) for k, v in wall_m.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout to time with this venv")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/startup.json")
    args = parser.parse_args()
    result = measure(args.runs, args.before)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
