"""Upload 200 small wheels with `nightwheels upload` and with `twine upload`, same server, same run.

    .venv/bin/python benchmarks/upload_vs_twine.py [--wheels 200] [--rounds 3] [--jobs N]
        [--batch N] [--database sqlite|postgres] [--server-workers 1] [--rtt-ms 0]

A live ``nightwheels serve`` on 127.0.0.1: the embedded default (SQLite and a local folder),
or PostgreSQL at 127.0.0.1:5432 (a scratch database created and dropped here).
Each round uploads a fresh set of wheels per tool (different project names, same sizes), so
both do the same work: every file is new. Prints the wall-clock times and their ratio
(target: nightwheels at least 3x faster than twine, through parallel uploads) and writes
them to benchmarks/results/upload_vs_twine-<database>[-<options>].json. ``--batch 1``
measures nightwheels on the legacy protocol (one file per request, as twine), so the
gain of parallel requests and of batches can be told apart. ``--rtt-ms`` puts a forwarder
that adds that round-trip time between both clients and the server (benchmarks/_latency.py),
as between a CI runner and an index elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._latency import LatencyProxy  # noqa: E402
from tests.support.backends import Backend  # noqa: E402
from tests.support.clients import BIN, clean_env  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402
from tests.support.wheels import make_wheel  # noqa: E402

VERSION = "1.0.0.dev202611250102"
TAGS = [
    f"cp3{minor}-cp3{minor}-{plat}"
    for minor in range(9, 14)
    for plat in (
        "manylinux_2_17_x86_64.manylinux2014_x86_64",
        "manylinux_2_17_aarch64.manylinux2014_aarch64",
        "musllinux_1_2_x86_64",
        "macosx_11_0_arm64",
        "win_amd64",
    )
]


def make_set(folder: Path, project: str, count: int) -> list[Path]:
    """``count`` wheels of about 20 kB: versions x platform tags, like a nightly matrix."""
    wheels = []
    for i in range(count):
        version = f"{VERSION[:-4]}{1000 + i // len(TAGS):04d}"
        tag = TAGS[i % len(TAGS)]
        payload = random.Random(f"{project}-{i}").randbytes(20_000)  # incompressible
        wheels.append(make_wheel(folder, project, version, tag, payload=payload))
    return wheels


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    import psycopg

    name = f"nw_bench_{os.getpid()}"
    admin = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += int(stats[current][11]) + int(stats[current][12])
        todo += children.get(current, [])
    return total / tick


@dataclass
class Run:
    wall: float  # seconds
    client_cpu: float  # the upload command's own CPU seconds
    server_cpu: float  # the server's CPU seconds meanwhile (all its processes)


def describe(run: Run) -> str:
    return f"{run.wall:.2f} s (CPU client {run.client_cpu:.2f} s, server {run.server_cpu:.2f} s)"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str], server_pid: int) -> Run:
    server_before, client_before = tree_cpu(server_pid), children_cpu()
    start = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return Run(elapsed, children_cpu() - client_before, tree_cpu(server_pid) - server_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="default: the tool's own")
    parser.add_argument("--batch", type=int, default=None, help="default: the tool's own")
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="added round-trip time")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp,
        scratch_database(args.database) as database_url,
    ):
        base = Path(tmp)
        # The backend, not only the server's environment: users and tokens are created
        # in this process, in the same database.
        backend = Backend(args.database, database_url=database_url)
        server = LiveServer(data=base / "data", backend=backend)
        server.data.mkdir()
        server.start("--workers", str(args.server_workers))
        latency = LatencyProxy(server.port, args.rtt_ms / 1000) if args.rtt_ms else None
        if latency is not None:
            latency.__enter__()
        url = latency.url if latency else server.url
        try:
            server.create_user("bench")
            projects = [f"bench-{tool}-{r}" for r in range(args.rounds) for tool in ("tw", "nw")]
            token = server.token("bench", *projects)
            runs: dict[str, list[Run]] = {"twine": [], "nightwheels": []}
            pid = server.process.pid if server.process else 0
            jobs = ["--jobs", str(args.jobs)] if args.jobs else []
            jobs += ["--batch", str(args.batch)] if args.batch else []
            for r in range(args.rounds):
                twine_dir = base / f"twine-{r}"
                nw_dir = base / f"nw-{r}"
                make_set(twine_dir, f"bench-tw-{r}", args.wheels)
                make_set(nw_dir, f"bench-nw-{r}", args.wheels)
                runs["twine"].append(
                    timed(
                        [
                            str(BIN / "twine"),
                            "upload",
                            "--disable-progress-bar",
                            "--non-interactive",
                            "--repository-url",
                            f"{url}/legacy/",
                            "-u",
                            "__token__",
                            "-p",
                            token,
                            *sorted(str(p) for p in twine_dir.iterdir()),
                        ],
                        clean_env(),
                        pid,
                    )
                )
                runs["nightwheels"].append(
                    timed(
                        [sys.executable, "-m", "nightwheels", "upload", str(nw_dir), *jobs],
                        clean_env(CI="true", NIGHTWHEELS_SERVER=url, NIGHTWHEELS_TOKEN=token),
                        pid,
                    )
                )
                print(
                    f"round {r + 1}: "
                    + ", ".join(f"{tool} {describe(runs[tool][-1])}" for tool in runs),
                    flush=True,
                )
        finally:
            if latency is not None:
                latency.__exit__()
            server.stop()

    def median(tool: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs[tool])

    twine = median("twine", "wall")
    nw = median("nightwheels", "wall")
    ratio = twine / nw
    print(
        f"\n{args.wheels} wheels, median of {args.rounds} rounds, {args.database}, "
        f"{args.server_workers} server worker(s), {args.rtt_ms:g} ms added round trip, "
        f"load average {os.getloadavg()[0]:.1f}:"
    )
    for tool, label in (("twine", "twine upload"), ("nightwheels", "nightwheels upload")):
        wall = median(tool, "wall")
        print(
            f"  {label:<19} {wall:6.2f} s ({args.wheels / wall:5.1f} files/s); CPU: client "
            f"{median(tool, 'client_cpu'):.2f} s, server "
            f"{median(tool, 'server_cpu') / args.wheels * 1000:.1f} ms/file"
        )
    # Both tools share the machine's cores with the server. twine keeps about one busy at a
    # time (it waits for each answer); nightwheels can at best keep all of them busy, so it
    # cannot take less than its client's and the server's CPU time over the core count.
    cores = os.cpu_count() or 1
    floor = (median("nightwheels", "client_cpu") + median("nightwheels", "server_cpu")) / cores
    print(f"  ratio               {ratio:6.2f}x  (target >= 3x)")
    print(
        f"  CPU floor           {floor:6.2f} s  (nightwheels client + server CPU / {cores} cores): "
        f"at most {twine / floor:.2f}x on this machine"
    )
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.server_workers == 1 else f"-{args.server_workers}workers"
    suffix += f"-batch{args.batch}" if args.batch else ""
    suffix += f"-jobs{args.jobs}" if args.jobs else ""
    suffix += f"-rtt{args.rtt_ms:g}ms" if args.rtt_ms else ""
    (results / f"upload_vs_twine-{args.database}{suffix}.json").write_text(
        json.dumps(
            {
                "wheels": args.wheels,
                "rounds": args.rounds,
                "jobs": args.jobs or "default",
                "batch": args.batch or "default",
                "server_workers": args.server_workers,
                "database": args.database,
                "rtt_ms": args.rtt_ms,
                "load_average_after": os.getloadavg()[0],
                "twine": [asdict(run) for run in runs["twine"]],
                "nightwheels": [asdict(run) for run in runs["nightwheels"]],
                "twine_seconds_median": round(twine, 3),
                "nightwheels_seconds_median": round(nw, 3),
                "ratio_median": round(ratio, 2),
                "cpu_floor_seconds": round(floor, 3),
                "ratio_ceiling": round(twine / floor, 2),
                "machine": f"{platform.machine()} {platform.system()}, "
                f"Python {platform.python_version()}, {os.cpu_count()} CPUs",
            },
            indent=2,
        )
        + "\n"
    )
    if ratio < 3:
        sys.exit(f"below target: {ratio:.2f}x < 3x")


if __name__ == "__main__":
    main()
