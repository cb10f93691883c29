"""Prune at scale, and what it does to serving.

Builds an index of PROJECTS x VERSIONS x TAGS files (default 1,000 x 40 x 5 = 200,000),
one version a day, rows inserted directly and all sharing one tiny blob. Then, with a live
server answering simple-page requests from CLIENTS threads:

1. idle: simple-page latency with nothing else running (the reference, same run);
2. prune: the same while a prune runs, in a separate process (``nightwheels prune``, as
   cron or an operator would) or by the server's own schedule (``--in-server``);
3. page changes only: the pruned projects' serials bumped again at the prune's own pace,
   with no prune work: the cost of re-rendering changed pages, which any change (uploads
   too) brings, separated from the cost of the prune itself.

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
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
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


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    v = [latency for _, latency in samples]
    return {
        "requests": len(v),
        "p50_ms": round(statistics.median(v), 2),
        "p99_ms": round(percentile(v, 0.99), 2),
        "max_ms": round(max(v), 2),
    }


class Load:
    """CLIENTS threads requesting random simple pages: (wall time, latency ms) samples."""

    def __init__(self, url: str, names: list[str], clients: int) -> None:
        self.url, self.names, self.clients = url, names, clients
        self.samples: list[tuple[float, float]] = []
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
                self.samples.append((time.time(), (time.perf_counter() - t) * 1000))
                if r.status_code != 200:
                    self.errors += 1

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.clients)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def between(self, start: float, end: float) -> list[tuple[float, float]]:
        return [s for s in self.samples if start <= s[0] <= end]


def warm(url: str, names: list[str]) -> None:
    with httpx.Client(timeout=60) as client:
        for name in names:
            client.get(f"{url}/simple/{name}/").raise_for_status()


def maintenance_event(data: Path) -> dict | None:  # type: ignore[type-arg]
    db = sqlite3.connect(data / "nightwheels.db")
    try:
        row = db.execute(
            "SELECT details FROM audit_events WHERE action = 'maintenance.run' ORDER BY id LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def first_removal(data: Path) -> float | None:
    """When the prune started removing (its first ``files.prune`` event): before it, the
    prune only reads and plans."""
    db = sqlite3.connect(data / "nightwheels.db")
    try:
        row = db.execute(
            "SELECT at FROM audit_events WHERE action = 'files.prune' ORDER BY id LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    return datetime.fromisoformat(row[0]).replace(tzinfo=UTC).timestamp()


def replay(data: Path) -> None:
    """Bump the serial of every pruned project at the same pace as the prune did, and
    nothing else: what serving pays for the page changes alone (any change, e.g. 1,000
    uploads, costs the same re-renders), as opposed to the prune's own work."""
    from sqlalchemy import select

    from nightwheels.db.models import AuditEvent, Project
    from nightwheels.services import serials

    services = open_services(data)
    with services.db.read() as session:
        events = session.execute(
            select(AuditEvent.at, AuditEvent.project)
            .where(AuditEvent.action == "files.prune")
            .order_by(AuditEvent.id)
        ).all()
    start, first = time.monotonic(), events[0][0]
    for at, name in events:
        delay = (at - first).total_seconds() - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)

        def bump(session, name=name):  # type: ignore[no-untyped-def]
            project = session.execute(select(Project).where(Project.name == name)).scalar_one()
            serials.bump(session, project)

        services.db.run_write(bump)


def main() -> None:
    if sys.argv[1:2] == ["--replay"]:
        replay(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=40)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="first")
    parser.add_argument(
        "--in-server", action="store_true", help="prune by the server's schedule, not the CLI"
    )
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--start-after", type=float, default=90, help="--in-server: schedule")
    parser.add_argument("--output", type=Path, default=None, help="append results (JSON lines)")
    parser.add_argument(
        "--spy", type=Path, default=None, help="py-spy record of the server during the prune"
    )
    args = parser.parse_args()
    policy = SCENARIOS[args.scenario]

    work = Path(tempfile.mkdtemp(prefix="nightwheels-bench-"))
    data = work / "data"
    env = {
        "NIGHTWHEELS_RETENTION_KEEP": str(policy["keep"]),
        "NIGHTWHEELS_RETENTION_DAYS": str(policy["days"]),
        "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
    }
    os.environ.update(env)
    services = open_services(data)
    t = time.perf_counter()
    files = bulk_seed(services, projects=args.projects, versions=args.versions, tags=TAGS)
    seed_s = time.perf_counter() - t
    services.close()
    names = [f"proj{i:05d}" for i in range(args.projects)]
    print(f"seeded {files} files in {seed_s:.1f} s ({work})", file=sys.stderr)

    server_env = dict(env)
    if args.in_server:
        server_env["NIGHTWHEELS_PRUNE_INTERVAL"] = str(args.start_after)
    live = LiveServer(data=data, env=server_env)
    started = time.time()
    live.start()
    try:
        warm(live.url, names)
        load = Load(live.url, names, args.clients).start()
        time.sleep(args.idle_seconds)
        idle_end = time.time()
        spy = None
        if args.spy:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(live.process.pid), "--threads", "--idle",
                 "--rate", "250", "--format", "raw", "--output", str(args.spy)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        if args.in_server:
            if idle_end > started + args.start_after:
                raise SystemExit("warm-up and idle took longer than --start-after: raise it")
            while (event := maintenance_event(data)) is None:
                time.sleep(0.5)
            begin = datetime.fromisoformat(event["started"]).timestamp()
            prune_s, cpu_s = event["seconds"], event["cpu_seconds"]
            end = begin + prune_s
            outcome = f"removed {event['pruned']} files"
        else:
            time.sleep(1)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            begin = time.time()
            out = subprocess.run(
                [sys.executable, "-m", "nightwheels", "prune", "--force"],
                env={**os.environ, "NIGHTWHEELS_DATA": str(data)},
                capture_output=True,
                text=True,
                check=True,
            )
            end = time.time()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            prune_s = end - begin
            cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            outcome = out.stderr.strip().splitlines()[-1]
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        time.sleep(2)
        replay_begin = time.time()
        subprocess.run([sys.executable, __file__, "--replay", str(data)], check=True)
        replay_end = time.time()
        time.sleep(1)
        load.stop()
    finally:
        live.stop()
    idle = summary(load.between(idle_end - args.idle_seconds, idle_end))
    during = summary(load.between(begin, end))
    removing = first_removal(data) or begin
    planning = summary(load.between(begin, removing))
    applying = summary(load.between(removing, end))
    changes_only = summary(load.between(replay_begin, replay_end))
    result = {
        "scenario": args.scenario,
        "prune_in": "server (scheduled child process)" if args.in_server else "CLI process",
        "files": files,
        "projects": args.projects,
        "prune_seconds": round(prune_s, 1),
        "prune_cpu_seconds": round(cpu_s, 1),
        "outcome": outcome,
        "idle": idle,
        "during_prune": during,
        "p99_ratio": round(during["p99_ms"] / idle["p99_ms"], 2),
        "planning_seconds": round(removing - begin, 1),
        "during_planning": planning,
        "during_removal": applying,
        "page_changes_only": changes_only,
        "p99_ratio_changes_only": round(changes_only["p99_ms"] / idle["p99_ms"], 2),
        "failed_requests": load.errors,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        with args.output.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
