"""Upload 200 small wheels with `nightwheels upload` and with `twine upload`, same server, same run.

    .venv/bin/python benchmarks/upload_vs_twine.py [--wheels 200] [--rounds 3] [--jobs 8]
        [--database sqlite|postgres] [--server-workers 1]

A live ``nightwheels serve`` on 127.0.0.1: the embedded default (SQLite and a local folder),
or PostgreSQL at 127.0.0.1:5432 (a scratch database created and dropped here).
Each round uploads a fresh set of wheels per tool (different project names, same sizes), so
both do the same work: every file is new. Prints the wall-clock times and their ratio
(target: nightwheels at least 3x faster than twine, through parallel uploads) and writes
them to benchmarks/results/upload_vs_twine.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp,
        scratch_database(args.database) as database_url,
    ):
        base = Path(tmp)
        server = LiveServer(data=base / "data")
        server.data.mkdir()
        if database_url:
            server.env["NIGHTWHEELS_DATABASE_URL"] = database_url
        server.start("--workers", str(args.server_workers))
        try:
            server.create_user("bench")
            projects = [f"bench-{tool}-{r}" for r in range(args.rounds) for tool in ("tw", "nw")]
            token = server.token("bench", *projects)
            times: dict[str, list[float]] = {"twine": [], "nightwheels": []}
            for r in range(args.rounds):
                twine_dir = base / f"twine-{r}"
                nw_dir = base / f"nw-{r}"
                make_set(twine_dir, f"bench-tw-{r}", args.wheels)
                make_set(nw_dir, f"bench-nw-{r}", args.wheels)
                times["twine"].append(
                    timed(
                        [
                            str(BIN / "twine"),
                            "upload",
                            "--disable-progress-bar",
                            "--non-interactive",
                            "--repository-url",
                            server.upload_url,
                            "-u",
                            "__token__",
                            "-p",
                            token,
                            *sorted(str(p) for p in twine_dir.iterdir()),
                        ],
                        clean_env(),
                    )
                )
                times["nightwheels"].append(
                    timed(
                        [
                            sys.executable,
                            "-m",
                            "nightwheels",
                            "upload",
                            str(nw_dir),
                            "--jobs",
                            str(args.jobs),
                        ],
                        clean_env(
                            CI="true", NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token
                        ),
                    )
                )
                print(
                    f"round {r + 1}: twine {times['twine'][-1]:.2f} s, "
                    f"nightwheels {times['nightwheels'][-1]:.2f} s",
                    flush=True,
                )
        finally:
            server.stop()

    twine = statistics.median(times["twine"])
    nw = statistics.median(times["nightwheels"])
    ratio = twine / nw
    print(
        f"\n{args.wheels} wheels, median of {args.rounds} rounds, {args.database}, "
        f"{args.server_workers} server worker(s), load average {os.getloadavg()[0]:.1f}:"
    )
    print(f"  twine upload        {twine:7.2f} s  ({args.wheels / twine:6.1f} files/s)")
    print(
        f"  nightwheels upload  {nw:7.2f} s  ({args.wheels / nw:6.1f} files/s, --jobs {args.jobs})"
    )
    print(f"  ratio               {ratio:7.2f}x  (target >= 3x)")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"upload_vs_twine-{args.database}.json").write_text(
        json.dumps(
            {
                "wheels": args.wheels,
                "rounds": args.rounds,
                "jobs": args.jobs,
                "server_workers": args.server_workers,
                "database": args.database,
                "load_average_after": os.getloadavg()[0],
                "twine_seconds": times["twine"],
                "nightwheels_seconds": times["nightwheels"],
                "ratio_median": round(ratio, 2),
                "machine": f"{platform.machine()} {platform.system()}, Python {platform.python_version()}",
            },
            indent=2,
        )
        + "\n"
    )
    if ratio < 3:
        sys.exit(f"below target: {ratio:.2f}x < 3x")


if __name__ == "__main__":
    main()
