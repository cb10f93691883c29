"""Prune at scale, and what it does to serving.

Builds an index of PROJECTS x VERSIONS x TAGS files (default 1,000 x 40 x 5 = 200,000),
one version a day, rows inserted directly and all sharing one tiny blob. Then, with a live
server answering simple-page requests from CLIENTS threads:

1. idle: simple-page latency with nothing else running (the reference);
2. prune: the same while a prune runs, in a separate process (``nightwheels prune``, as
   cron or an operator would) or inside the server (``--in-server``: the scheduler thread).

Scenarios: ``first`` (keep 5: removes 35 of 40 versions, 175,000 files, the worst case of a
first run on a full index) and ``nightly`` (keep 39: one version per project, 5,000 files,
the steady state of a daily run over 200,000 live files).

    python benchmarks/prune.py [--scenario first|nightly] [--in-server] [--database-url URL]

Targets (issue 5): prune under 60 s; simple-page p99 during prune within 2x of idle.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.seed import bulk_seed, open_services  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64",
    "cp313-cp313-manylinux_2_17_x86_64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp312-cp312-win_amd64",
)
SCENARIOS = {"first": {"keep": 5, "days": 30}, "nightly": {"keep": 39, "days": 60}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Load:
    """CLIENTS threads requesting random simple pages; latencies in ms."""

    def __init__(self, url: str, names: list[str], clients: int) -> None:
        self.url, self.names, self.clients = url, names, clients
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                name = rng.choice(self.names)
                t = time.perf_counter()
                r = client.get(f"{self.url}/simple/{name}/")
                self.latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code >= 500:
                    self.errors += 1

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.clients)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def summary(self) -> dict[str, float]:
        v = self.latencies
        return {
            "requests": len(v),
            "p50_ms": round(statistics.median(v), 2),
            "p99_ms": round(percentile(v, 0.99), 2),
            "max_ms": round(max(v), 2),
            "errors": self.errors,
        }


def measure(url: str, names: list[str], clients: int, seconds: float) -> dict[str, float]:
    load = Load(url, names, clients)
    load.start()
    time.sleep(seconds)
    load.stop()
    return load.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=40)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="first")
    parser.add_argument("--in-server", action="store_true", help="prune in the server thread")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--output", type=Path, default=None, help="append results (JSON lines)")
    args = parser.parse_args()
    policy = SCENARIOS[args.scenario]

    work = Path(tempfile.mkdtemp(prefix="nightwheels-bench-"))
    data = work / "data"
    env = {
        "NIGHTWHEELS_RETENTION_KEEP": str(policy["keep"]),
        "NIGHTWHEELS_RETENTION_DAYS": str(policy["days"]),
        "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
    }
    if args.database_url:
        env["NIGHTWHEELS_DATABASE_URL"] = args.database_url
    for key, value in env.items():
        os.environ[key] = value
    services = open_services(data)
    t = time.perf_counter()
    files = bulk_seed(services, projects=args.projects, versions=args.versions, tags=TAGS)
    seed_s = time.perf_counter() - t
    services.close()
    names = [f"proj{i:05d}" for i in range(args.projects)]
    print(f"seeded {files} files in {seed_s:.1f} s ({work})", file=sys.stderr)

    server_env = dict(env)
    if args.in_server:
        server_env["NIGHTWHEELS_PRUNE_INTERVAL"] = "1e9"  # started by hand below
    live = LiveServer(data=data, env=server_env)
    live.start()
    try:
        measure(live.url, names, args.clients, 3)  # warm the page cache
        idle = measure(live.url, names, args.clients, args.idle_seconds)
        load = Load(live.url, names, args.clients)
        load.start()
        t = time.perf_counter()
        if args.in_server:
            raise SystemExit("--in-server: see docs/retention.md (run by the scheduler)")
        out = subprocess.run(
            [sys.executable, "-m", "nightwheels", "prune", "--force"],
            env={**os.environ, "NIGHTWHEELS_DATA": str(data)},
            capture_output=True,
            text=True,
            check=True,
        )
        prune_s = time.perf_counter() - t
        load.stop()
        during = load.summary()
    finally:
        live.stop()
    removed = out.stderr.strip().splitlines()[-1]
    result = {
        "scenario": args.scenario,
        "database": "postgresql" if args.database_url else "sqlite",
        "files": files,
        "projects": args.projects,
        "prune_seconds": round(prune_s, 1),
        "prune_summary": removed,
        "idle": idle,
        "during_prune": during,
        "p99_ratio": round(during["p99_ms"] / idle["p99_ms"], 2),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if args.output:
        with args.output.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
