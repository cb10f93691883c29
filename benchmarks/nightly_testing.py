"""What ``nightwheels test`` costs against the usual CI snippet, and what bisection costs.

Reference (measured in the same run, same warm uv cache): ``uv venv``, then
``uv pip install --prerelease allow --index NIGHTLY --default-index STABLE project[...]``
and ``pytest --report-log``, the snippet SPEC 4 projects copy. Reports the median wall time
of each (interleaved, so both see the same machine load), their ratio, whether the reference took the hostile ``zeta`` from the nightly index
(dependency confusion), the start-up time of ``nightwheels test``/``report`` (``nightwheels
report`` with nothing to do, less a bare interpreter), and the wall time and run count of a ``--bisect`` run.

nightwheels' own modules are byte-compiled first, as installing its wheel does.
``steps_ms`` says where the time goes, in milliseconds (medians): the reference's steps
from the timed runs, and ``nightwheels test``'s from as many untimed runs under
``benchmarks/_steps.py``, which logs each child process and HTTP request it makes.

    .venv/bin/python benchmarks/nightly_testing.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import nightwheels as package
from tests.support.clients import BIN, clean_env, run
from tests.support.nightly_world import build_world


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def traced_steps(world, log: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One ``nightwheels test`` run under ``_steps.py``: seconds per step, in order."""
    command = [
        sys.executable, str(Path(__file__).with_name("_steps.py")), str(log), "-m", "nightwheels",
        "test", str(world.downstream), "--index", world.server.simple_url,
        "--stable-index", world.stable.url, "--extra", "test", "--group", "test",
    ]  # fmt: skip
    env = clean_env(UV_CACHE_DIR=str(world.uv_cache), XDG_CACHE_HOME=str(world.tmp / "xdg"))
    launched = time.monotonic()
    run(command, env=env, check=False, timeout=600)
    ended = time.monotonic()
    events = [json.loads(line) for line in log.read_text().splitlines()]

    def span(*whats: str) -> tuple[float, float]:
        chosen = [e for e in events if e["what"] in whats or (e["kind"] in whats)]
        return min(e["start"] for e in chosen), max(e["end"] for e in chosen)

    venv, reads = span("uv venv"), span("http")
    install, tests = span("uv pip install"), span("pytest")
    requests = sum(e["kind"] == "http" for e in events)
    steps = {  # the path each step waits on, in order
        "start-up: interpreter, arguments, until uv venv starts": venv[0] - launched,
        "imports, the project, the options (uv venv runs meanwhile)": reads[0] - venv[0],
        f"index reads ({requests} requests)": reads[1] - reads[0],
        "waiting for uv venv": max(0.0, venv[1] - reads[1]),
        "choosing the nightlies": install[0] - max(reads[1], venv[1]),
        "uv pip install": install[1] - install[0],
        "reading the environment": tests[0] - install[1],
        "pytest": tests[1] - tests[0],
        "removing the venv, the report, exit": ended - tests[1],
        "total": ended - launched,
        "uv venv (alongside)": venv[1] - venv[0],
    }
    git = [e for e in events if e["what"].startswith("git")]
    if git:
        steps["git rev-parse (alongside)"] = git[0]["end"] - git[0]["start"]
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # nightwheels as installed from its wheel, byte-compiled: this checkout is imported from
    # its sources, which, with PYTHONDONTWRITEBYTECODE=1 (set on this machine), would be
    # compiled again on every run (0.2 G instructions, a quarter of the process's).
    compileall.compile_dir(Path(package.__file__).parent, quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="nw-nightly-bench-"))
    world = build_world(tmp)
    env = clean_env(UV_CACHE_DIR=str(world.uv_cache))
    uv = str(BIN / "uv")
    took_zeta: list[bool] = []

    ref_steps: dict[str, list[float]] = defaultdict(list)

    def step(name: str, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = fn()
        ref_steps[name].append(time.perf_counter() - start)
        return result

    def reference() -> None:
        venv = tmp / "ref-venv"
        step("remove the last venv", lambda: shutil.rmtree(venv, ignore_errors=True))
        step(
            "uv venv",
            lambda: run([uv, "venv", "-q", "--python", sys.executable, str(venv)], env=env),
        )
        step("uv pip install", lambda: run(
            [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
             "--prerelease", "allow", "--index", world.server.simple_url,
             "--default-index", world.stable.url,
             f"downstream[test] @ {world.downstream.as_uri()}", "bolide", "pytest",
             "pytest-reportlog"],
            env=env,
        ))  # fmt: skip
        frozen = step("uv pip freeze", lambda: run(
            [uv, "pip", "freeze", "--python", str(venv / "bin" / "python")], env=env
        ))  # fmt: skip
        took_zeta.append("zeta==9.0.0.dev0" in frozen.stdout)
        step("pytest", lambda: run(
            [str(venv / "bin" / "python"), "-m", "pytest", "-q",
             f"--report-log={tmp / 'ref.jsonl'}", "--continue-on-collection-errors"],
            env=env, cwd=world.downstream, check=False,
        ))  # fmt: skip

    def nightwheels() -> None:
        world.test("--extra", "test", "--group", "test")

    try:
        reference()  # warm the cache for both
        nightwheels()
        ref: list[float] = []
        ours: list[float] = []
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            ref.append(timed(reference))
            ours.append(timed(nightwheels))
        ref_steps.clear()  # the breakdown: the reference again, and traced runs of ours
        our_steps: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.repeat):
            reference()
            for name, took in traced_steps(world, tmp / "steps.jsonl").items():
                our_steps[name].append(took)
        saved = tmp / "bisect.json"
        bisect_s = timed(
            lambda: world.test(
                "--extra", "test", "--group", "test", "--bisect", "--save", str(saved)
            )
        )
        bisect = json.loads(saved.read_text())["bisect"]
        startup = statistics.median(
            timed(
                lambda: run([sys.executable, "-m", "nightwheels", "report"], env=env, check=False)
            )
            for _ in range(args.repeat)
        )
        bare = statistics.median(
            timed(lambda: run([sys.executable, "-c", "pass"], env=env)) for _ in range(args.repeat)
        )
        result = {
            "nightlies": 3,
            "reference_median_s": round(statistics.median(ref), 2),
            "nightwheels_median_s": round(statistics.median(ours), 2),
            "ratio": round(statistics.median(ours) / statistics.median(ref), 2),
            "reference_installed_hostile_zeta_from_nightly_index": all(took_zeta),
            "cli_startup_s": round(startup - bare, 2),
            "repeat": args.repeat,
            "load_average_1min": round(os.getloadavg()[0], 1),
            "steps_ms": {
                "reference": {k: round(1000 * statistics.median(v)) for k, v in ref_steps.items()},
                "nightwheels": {
                    k: round(1000 * statistics.median(v)) for k, v in our_steps.items()
                },
            },
            "bisect_s": round(bisect_s, 2),
            "bisect_package_runs": bisect["package_runs"],
            "bisect_build_runs": bisect["date_runs"],
            "bisect_confirm_runs": bisect["confirm_runs"],
            "bisect_builds_considered": bisect["builds"][0]["builds_considered"],
            "culprit": bisect["culprits"],
        }
    finally:
        world.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(__file__).parent / "results" / "nightly_testing.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
