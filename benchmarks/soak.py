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
        self.server_errors: list[str] = []  # "kind status: body", first few

    def record(self, kind: str, seconds: float, status: int, body: str = "") -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.status[f"{status // 100}xx"] += 1
            if status >= 500 and len(self.server_errors) < 10:
                self.server_errors.append(f"{kind} {status}: {body[:200]}")


def timed_get(client: httpx.Client, stats: Stats, kind: str, url: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    response = client.get(url, **kw)
    body = response.text if response.status_code >= 500 else ""
    stats.record(kind, time.perf_counter() - start, response.status_code, body)
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
                body = response.text if response.status_code >= 500 else ""
                stats.record(action, time.perf_counter() - start, response.status_code, body)
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


def server_errors(log: str, limit: int = 5) -> list[str]:
    """The last lines of the first few tracebacks in the server's log."""
    found: list[str] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback") and len(found) < limit:
            end = i + 1
            while end < len(lines) and lines[end].startswith((" ", "\t", "Traceback", "During")):
                end += 1
            found.append("\n".join(lines[max(0, i - 1) : i + 1] + lines[end - 6 : end + 1]))
    return found


def probe_server(server: LiveServer, probe_dir: Path, trace: bool) -> None:
    """Run the server under benchmarks/_memprobe.py (samples malloc, SQLite, gc; tracemalloc)."""
    server.command = [sys.executable, str(Path(__file__).parent / "_memprobe.py")]
    server.env.update(NW_PROBE_DIR=str(probe_dir), NW_PROBE_INTERVAL="5")
    if trace:
        server.env["NW_PROBE_TRACEMALLOC"] = "1"


def want_snapshot(probe_dir: Path, name: str) -> None:
    (probe_dir / f"want-{name}").touch()


def snapshot_diff(probe_dir: Path, names: list[str], top: int = 12) -> dict[str, object]:
    """What the Python heap gained between tracemalloc snapshots, by source line."""
    import tracemalloc

    for name in names:  # the probe takes them on its next tick
        deadline = time.monotonic() + 120
        while not (probe_dir / f"snap-{name}.pickle").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no snapshot {name}")
            time.sleep(0.5)
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    snaps = [
        tracemalloc.Snapshot.load(str(probe_dir / f"snap-{n}.pickle")).filter_traces(ignore)
        for n in names
    ]
    out: dict[str, object] = {
        "python_traced_mib": {
            n: round(sum(s.size for s in snap.statistics("filename")) / 2**20, 2)
            for n, snap in zip(names, snaps, strict=True)
        }
    }
    for (a, sa), (b, sb) in zip(
        zip(names, snaps, strict=True), zip(names[1:], snaps[1:], strict=True), strict=False
    ):
        diff = sb.compare_to(sa, "traceback")
        out[f"{a}->{b}"] = [
            {
                "kib": round(d.size_diff / 1024, 1),
                "blocks": d.count_diff,
                "where": [
                    f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in d.traceback
                ][-6:],
            }
            for d in diff[:top]
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=float,
        default=60,
        help="seconds of full load (readers and writer) before the RSS baseline",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnosis: trace the server's Python allocations (slower; own output file)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server process (e.g. MALLOC_ARENA_MAX=2)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results = Path(__file__).parent / "results"
    output = args.output or results / ("soak-tracemalloc.json" if args.tracemalloc else "soak.json")
    tmp = Path(tempfile.mkdtemp(prefix="nw-soak-"))
    server = LiveServer(data=tmp / "data")
    server.data.mkdir()
    server.env.update(kv.split("=", 1) for kv in args.server_env)
    probe_dir = tmp / "probe"
    if args.workers == 1:
        probe_server(server, probe_dir, args.tracemalloc)
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
        assert server.process is not None
        pid = server.process.pid
        rss_boot = rss_kib(pid)
        stats = Stats()
        stop = threading.Event()
        threads = [
            threading.Thread(target=reader, args=(server, stats, stop, i))
            for i in range(args.clients)
        ]
        writes: Counter[str] = Counter()
        threads.append(
            threading.Thread(
                target=lambda: writes.update(writer(server, token, tmp / "work", stats, stop))
            )
        )
        t0 = time.monotonic()
        for t in threads:
            t.start()
        series: list[tuple[float, int]] = []  # (seconds since load began, RSS KiB)
        warm = False
        half_requested = False
        total = args.warmup + args.duration
        while (now := time.monotonic() - t0) < total:
            time.sleep(min(5.0, max(0.0, 5 * (len(series) + 1) - now)))
            series.append((round(time.monotonic() - t0, 1), rss_kib(pid)))
            if not warm and series[-1][0] >= args.warmup:
                warm = True
                with stats.lock:  # latencies after the warm-up only
                    stats.latency.clear()
                if args.tracemalloc:
                    want_snapshot(probe_dir, "warm")
            if (
                args.tracemalloc
                and not half_requested
                and series[-1][0] >= args.warmup + args.duration / 2
            ):
                half_requested = True
                want_snapshot(probe_dir, "half")
        if args.tracemalloc:
            want_snapshot(probe_dir, "end")
        stop.set()
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - t0 - args.warmup
        measured = [(t, r) for t, r in series if t >= args.warmup]
        rss_start = measured[0][1]
        rss_half = min(measured, key=lambda s: abs(s[0] - (args.warmup + args.duration / 2)))[1]
        rss_end = measured[-1][1]
        pct = lambda a, b: round(100 * (b - a) / a, 1)  # noqa: E731
        result: dict[str, object] = {
            "duration_s": round(elapsed, 1),
            "warmup_s": args.warmup,
            "clients": args.clients,
            "workers": args.workers,
            "installs": stats.installs,
            "installs_per_s": round(stats.installs / (elapsed + args.warmup), 1),
            "failed_installs": len(stats.failed_installs),
            "failed_examples": stats.failed_installs[:5],
            "status": dict(stats.status),
            "server_5xx": stats.status.get("5xx", 0),
            "client_errors": dict(stats.errors),
            "writes": dict(writes),
            "latency": {k: summary(v) for k, v in sorted(stats.latency.items()) if v},
            "rss_boot_mib": round(rss_boot / 1024, 1),
            "rss_start_mib": round(rss_start / 1024, 1),
            "rss_half_mib": round(rss_half / 1024, 1),
            "rss_end_mib": round(rss_end / 1024, 1),
            "rss_max_mib": round(max(r for _, r in series) / 1024, 1),
            "rss_growth_pct": pct(rss_start, rss_end),
            "rss_growth_second_half_pct": pct(rss_half, rss_end),
            "rss_every_5s_mib": [round(r / 1024, 1) for _, r in series],
            "files_listed_at_end": sum(
                len(httpx.get(f"{server.simple_url}{p}/", headers=JSON).json()["files"])
                for p in PROJECTS
            ),
            "machine": f"{os.cpu_count()} cpus",
        }
        if stats.server_errors:
            result["server_5xx_examples"] = stats.server_errors
        if args.server_env:
            result["server_env"] = args.server_env
        log = tmp / f"server-{server.port}.log"
        errors = server_errors(log.read_text(errors="replace")) if log.exists() else []
        if errors:
            result["server_errors"] = errors
        probe_file = probe_dir / "probe.jsonl"
        if probe_file.exists():
            rows = [json.loads(line) for line in probe_file.read_text().splitlines()]
            first = rows[0]["t"]
            result["probe_every_5s"] = {
                key: [r.get(key) for r in rows] for key in rows[-1] if key != "t"
            } | {"t": [round(r["t"] - first) for r in rows]}
        if args.tracemalloc:
            result["tracemalloc"] = snapshot_diff(probe_dir, ["warm", "half", "end"])
        print(json.dumps(result, indent=2))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
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
