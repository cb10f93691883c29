"""Soak: 64 clients install (simple page + metadata + wheel) while the index is written to.

Readers loop over random projects: the JSON simple page, then one listed file's PEP 658
metadata and the wheel itself, checked against the listed sha256 (a listed file that
cannot be fetched whole is a failed install). Meanwhile a writer uploads new versions,
replaces files and yanks through the CLI (and prunes, if this build has ``prune``).

Reports 5xx count, failed installs, p50/p99 latency per request kind and the server's RSS
growth from after the warm-up to the end.

    .venv/bin/python benchmarks/soak.py [--duration 300] [--clients 64] [--workers 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
PROJECTS = [f"soak{i}" for i in range(8)]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter[str] = Counter()
        self.failed_installs: list[str] = []
        self.errors: Counter[str] = Counter()
        self.installs = 0

    def record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.status[f"{status // 100}xx"] += 1


def timed_get(client: httpx.Client, stats: Stats, kind: str, url: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    response = client.get(url, **kw)
    stats.record(kind, time.perf_counter() - start, response.status_code)
    return response


def reader(server: LiveServer, stats: Stats, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            project = rng.choice(PROJECTS)
            try:
                page = timed_get(
                    client, stats, "simple", f"{server.simple_url}{project}/", headers=JSON
                )
                if page.status_code != 200:
                    continue
                files = [f for f in page.json()["files"] if not f.get("yanked")]
                if not files:
                    continue
                chosen = rng.choice(files)
                url = httpx.URL(f"{server.simple_url}{project}/").join(chosen["url"])
                meta = timed_get(client, stats, "metadata", f"{url}.metadata")
                wheel = timed_get(client, stats, "wheel", str(url))
                ok = (
                    meta.status_code == 200
                    and wheel.status_code == 200
                    and hashlib.sha256(wheel.content).hexdigest() == chosen["hashes"]["sha256"]
                )
                with stats.lock:
                    stats.installs += 1
                    if not ok:
                        stats.failed_installs.append(
                            f"{chosen['filename']}: metadata {meta.status_code}, "
                            f"wheel {wheel.status_code}"
                        )
            except httpx.HTTPError as exc:
                with stats.lock:
                    stats.errors[type(exc).__name__] += 1


def writer(
    server: LiveServer, token: str, work: Path, stats: Stats, stop: threading.Event
) -> Counter[str]:
    done: Counter[str] = Counter()
    rng = random.Random(0)
    has_prune = "No such command" not in server.cli("prune", "--help", check=False).stderr
    n = 100
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            n += 1
            project = rng.choice(PROJECTS)
            action = rng.choice(
                ["upload", "upload", "replace", "yank"] + (["prune"] if has_prune else [])
            )
            version = f"1.0.dev{n}" if action == "upload" else "1.0.dev1"
            if action in ("upload", "replace"):
                wheel = make_wheel(
                    work / str(n), project, version, payload=os.urandom(rng.randint(1, 200) * 1024)
                )
                content = wheel.read_bytes()
                start = time.perf_counter()
                response = client.post(
                    server.upload_url,
                    data={
                        ":action": "file_upload",
                        "name": project,
                        "version": version,
                        "sha256_digest": hashlib.sha256(content).hexdigest(),
                    },
                    files={"content": (wheel.name, content)},
                    auth=("__token__", token),
                )
                stats.record(action, time.perf_counter() - start, response.status_code)
                shutil.rmtree(work / str(n), ignore_errors=True)
            elif action == "yank":
                target = f"1.0.dev{rng.randint(101, max(101, n - 1))}"
                server.cli("yank", project, target, "--reason", "soak", check=False)
            else:
                server.cli("prune", check=False)
            done[action] += 1
    return done


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "count": len(ordered),
        "p50_ms": round(pick(0.5), 1),
        "p99_ms": round(pick(0.99), 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "soak.json"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nw-soak-"))
    server = LiveServer(data=tmp / "data")
    server.data.mkdir()
    try:
        server.start(*(["--workers", str(args.workers)] if args.workers > 1 else []))
        server.create_user("soak")
        token = server.token("soak", *PROJECTS)
        with httpx.Client(timeout=60) as client:
            for project in PROJECTS:  # seed: a few versions each
                for v in range(1, 4):
                    wheel = make_wheel(
                        tmp / "seed", project, f"1.0.dev{v}", payload=os.urandom(64 * 1024)
                    )
                    content = wheel.read_bytes()
                    r = client.post(
                        server.upload_url,
                        auth=("__token__", token),
                        data={
                            ":action": "file_upload",
                            "name": project,
                            "version": f"1.0.dev{v}",
                            "sha256_digest": hashlib.sha256(content).hexdigest(),
                        },
                        files={"content": (wheel.name, content)},
                    )
                    r.raise_for_status()
        stats = Stats()
        stop = threading.Event()
        readers = [
            threading.Thread(target=reader, args=(server, stats, stop, i))
            for i in range(args.clients)
        ]
        for t in readers:
            t.start()
        time.sleep(args.warmup)
        assert server.process is not None
        pid = server.process.pid
        rss_start = rss_kib(pid)
        with stats.lock:  # measure after the warm-up only
            stats.latency.clear()
        writes: Counter[str] = Counter()
        writer_thread = threading.Thread(
            target=lambda: writes.update(writer(server, token, tmp / "work", stats, stop))
        )
        writer_thread.start()
        started = time.monotonic()
        rss_samples = []
        while time.monotonic() - started < args.duration:
            time.sleep(min(5, args.duration))
            rss_samples.append(rss_kib(pid))
        stop.set()
        for t in [*readers, writer_thread]:
            t.join(120)
        elapsed = time.monotonic() - started
        rss_end = rss_kib(pid)
        result = {
            "duration_s": round(elapsed, 1),
            "clients": args.clients,
            "workers": args.workers,
            "installs": stats.installs,
            "installs_per_s": round(stats.installs / elapsed, 1),
            "failed_installs": len(stats.failed_installs),
            "failed_examples": stats.failed_installs[:5],
            "status": dict(stats.status),
            "server_5xx": stats.status.get("5xx", 0),
            "client_errors": dict(stats.errors),
            "writes": dict(writes),
            "latency": {k: summary(v) for k, v in sorted(stats.latency.items()) if v},
            "rss_start_mib": round(rss_start / 1024, 1),
            "rss_end_mib": round(rss_end / 1024, 1),
            "rss_max_mib": round(max([*rss_samples, rss_end]) / 1024, 1),
            "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
            "rss_every_30s_mib": [round(x / 1024, 1) for x in rss_samples[5::6]],
            "files_listed_at_end": sum(
                len(httpx.get(f"{server.simple_url}{p}/", headers=JSON).json()["files"])
                for p in PROJECTS
            ),
            "machine": f"{os.cpu_count()} cpus",
        }
        print(json.dumps(result, indent=2))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        ok = (
            result["server_5xx"] == 0
            and result["failed_installs"] == 0
            and result["rss_growth_pct"] < 10
        )
        sys.exit(0 if ok else 1)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
