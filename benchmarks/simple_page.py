"""Simple-page throughput: nightwheels against nginx serving the same bytes, and against a
previous version of nightwheels serving the same corpus, in the same run.

Corpus: 20 projects x 10 nightly versions x 21 wheels (4,200 files), built through the
publish service. Load: wrk from another process on loopback. Then 100,000 more files in
other projects, and the same page again (its cost must not depend on the rest of the index).

The previous version (``--baseline-ref``; default: on a branch, its merge base with ``main``;
on ``main``, the parent of the last commit that changed ``src/`` or ``pyproject.toml``, i.e. the
server as it was before its latest change) is taken
with ``git archive``, installed (``pip install --no-deps``) into a throwaway venv that borrows
this venv's dependencies, and builds the corpus with its own code; the current version serves a
copy of that data directory (migrated forward on start). The comparison with it is made of
back-to-back pairs (current, previous) in alternating order; the ratio is the median of the
per-pair ratios, which cancels most of the drift of a shared machine's background load.
``--baseline-ref none`` skips it.

    .venv/bin/python benchmarks/simple_page.py [--duration 10] [--connections 32]
        [--baseline-ref REF] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._corpus import add_bulk_rows, build_corpus
from tests.support.server import LiveServer, free_port

JSON = "application/vnd.pypi.simple.v1+json"
PAGE = "/simple/proj07/"
REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def default_baseline_ref() -> str:
    """On a branch: where it left ``main`` (the version it would replace). On ``main``: the
    server before its latest change, the parent of the last commit that touched it."""
    try:
        fork = git("merge-base", "HEAD", "main")
    except subprocess.CalledProcessError:
        fork = None
    if fork and fork != git("rev-parse", "HEAD"):
        return fork
    return git("log", "-1", "--format=%H", "HEAD", "--", "src", "pyproject.toml") + "~1"


def install_baseline(ref: str, dest: Path) -> tuple[str, Path]:
    """Install ``ref`` into a venv under ``dest``; return its commit and its Python.

    Only nightwheels itself is installed; its dependencies are this venv's (a ``.pth``
    line), so the venv takes seconds and no index. A dependency the old version needs but
    this venv lacks fails the import check below.
    """
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    source = dest / f"nightwheels-{sha[:12]}"
    source.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    venv = dest / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # After the venv's own site-packages: the baseline's install wins over this checkout.
    Path(site, "zz_shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)], check=True
    )
    where = subprocess.run(
        [str(python), "-c", "import nightwheels; print(nightwheels.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=dest,
    ).stdout.strip()
    if not where.startswith(str(venv)):
        raise RuntimeError(f"baseline imports nightwheels from {where}, not from {venv}")
    return sha, python


def build_corpus_with(python: Path, source: Path, data: Path) -> None:
    """Build the corpus with the baseline's own code (its schema, its publish rules)."""
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks._corpus import build_corpus;"
        "build_corpus(Path(sys.argv[2])).close()"
    )
    subprocess.run([str(python), "-c", script, str(source), str(data)], check=True, cwd=source)


def wrk(url: str, duration: int, connections: int, accept: str | None = None) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if accept:
        args[1:1] = ["-H", f"Accept: {accept}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def latency(p: str) -> float:
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def launch_nginx(conf: Path, prefix: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx with ``conf`` (prefix ``prefix``), once it answers on ``port``."""
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)])
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc


def start_nginx(root: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    conf = root.parent / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers};
daemon off;
error_log {root.parent}/nginx-error.log;
pid {root.parent}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ index index.html; }}
        location ~ /json$ {{ default_type application/vnd.pypi.simple.v1+json; }}
    }}
}}
""")
    return launch_nginx(conf, root.parent, port)


def against_previous(
    url: str, old_url: str, duration: int, connections: int, rounds: int
) -> dict[str, object]:
    """Current / previous rate, from back-to-back pairs in alternating order.

    On a shared machine the background load drifts over a run; a ratio taken within one
    pair of adjacent runs cancels most of it, and the median over rounds the rest.
    """
    out: dict[str, object] = {}
    for kind, accept in (("html", None), ("json", JSON)):
        pairs = []
        for i in range(rounds):
            order = [(url, "current"), (old_url, "previous")]
            if i % 2:
                order.reverse()
            rates = {who: wrk(u, duration, connections, accept=accept) for u, who in order}
            pairs.append(rates)
        ratios = sorted(p["current"]["rps"] / p["previous"]["rps"] for p in pairs)
        out[kind] = {
            "current_rps": [p["current"]["rps"] for p in pairs],
            "previous_rps": [p["previous"]["rps"] for p in pairs],
            "previous_p99_ms": [p["previous"]["p99_ms"] for p in pairs],
            "errors": sum(p[w]["errors"] for p in pairs for w in p),
        }
        out[f"{kind}_ratio"] = round(ratios[len(ratios) // 2], 3)
        out[f"{kind}_ratio_range"] = [round(ratios[0], 3), round(ratios[-1], 3)]
    return out


def start_bare(page_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """The ceiling: a bare ASGI app on the same uvicorn, protocol and worker count."""
    from nightwheels.server.protocol import http_protocol

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks._bare_asgi:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-server-header",
            "--http",
            "h11" if http_protocol() == "h11" else "httptools",
        ],
        cwd=REPO,
        env={**os.environ, "BARE_PAGE_DIR": str(page_dir)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the bare ASGI app did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument(
        "--baseline-ref",
        default=None,
        help="git ref of the previous version ('none': skip); default: the merge base with "
        "main on a branch, else the parent of the last commit that changed src/",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating pairs against the previous version"
    )
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        sys.exit("needs wrk and nginx (Debian packages wrk, nginx-light)")

    tmp = Path(tempfile.mkdtemp(prefix="nw-bench-"))
    tmp.chmod(0o755)  # nginx workers run as an unprivileged user
    results: dict[str, object] = {
        "corpus_files": 4200,
        "workers": args.workers,
        "connections": args.connections,
        "commit": git("rev-parse", "HEAD"),
    }
    ref = args.baseline_ref or default_baseline_ref()
    previous: LiveServer | None = None
    # What the previous version is and did, gathered here and recorded once, at the end.
    baseline: dict[str, object] = {}
    t0 = time.perf_counter()
    if ref != "none":
        sha, python = install_baseline(ref, tmp / "baseline")
        build_corpus_with(python, tmp / "baseline" / f"nightwheels-{sha[:12]}", tmp / "base")
        shutil.copytree(tmp / "base", tmp / "data")
        baseline["commit"] = sha
        if ref != sha:  # a name (main, HEAD~1): the commit it meant then
            baseline["ref"] = ref
        previous = LiveServer(data=tmp / "base", command=[str(python), "-m", "nightwheels"])
    else:
        services = build_corpus(tmp / "data")
        services.close()
    results["corpus_build_s"] = round(time.perf_counter() - t0, 1)

    server = LiveServer(data=tmp / "data")
    server.start("--workers", str(args.workers))
    if previous is not None:
        previous.start("--workers", str(args.workers))
    try:
        url = server.url + PAGE
        html = httpx.get(url).content
        js = httpx.get(url, headers={"Accept": JSON}).content
        if previous is not None:
            old_url = previous.url + PAGE
            old_html = httpx.get(old_url).content
            old_js = httpx.get(old_url, headers={"Accept": JSON}).content
            baseline["same_bytes"] = {"html": old_html == html, "json": old_js == js}
            if old_html != html or old_js != js:  # the same bytes: page_bytes below says it
                baseline["page_bytes"] = {"html": len(old_html), "json": len(old_js)}
        static = tmp / "static"
        (static / "simple" / "proj07").mkdir(parents=True)
        (static / "simple" / "proj07" / "index.html").write_bytes(html)
        (static / "simple" / "proj07" / "json").write_bytes(js)
        (static / "page.html").write_bytes(html)
        (static / "page.json").write_bytes(js)
        nginx_port, bare_port = free_port(), free_port()
        nginx = start_nginx(static, nginx_port, args.workers)
        bare = start_bare(static, bare_port, args.workers)
        try:
            for _ in range(2):  # warm up
                wrk(url, 2, args.connections)
                if previous is not None:
                    wrk(old_url, 2, args.connections)
            nginx_html = wrk(
                f"http://127.0.0.1:{nginx_port}{PAGE}", args.duration, args.connections
            )
            nw_html = wrk(url, args.duration, args.connections)
            nginx_json = wrk(
                f"http://127.0.0.1:{nginx_port}{PAGE}json", args.duration, args.connections
            )
            nw_json = wrk(url, args.duration, args.connections, accept=JSON)
            bare_url = f"http://127.0.0.1:{bare_port}{PAGE}"
            wrk(bare_url, 2, args.connections)
            bare_html = wrk(bare_url, args.duration, args.connections)
            bare_json = wrk(bare_url, args.duration, args.connections, accept=JSON)
            if previous is not None:
                baseline |= against_previous(
                    url, old_url, args.duration, args.connections, args.rounds
                )
                previous.stop()
        finally:
            nginx.terminate()
            nginx.wait()
            bare.terminate()
            bare.wait()
        results.update(
            nginx_html=nginx_html,
            nightwheels_html=nw_html,
            nginx_json=nginx_json,
            nightwheels_json=nw_json,
            html_ratio=round(nw_html["rps"] / nginx_html["rps"], 3),
            json_ratio=round(nw_json["rps"] / nginx_json["rps"], 3),
            # Issue 18 item 7: the share of a bare uvicorn app's rate (same bytes, same run).
            bare_uvicorn_html=bare_html,
            bare_uvicorn_json=bare_json,
            html_ratio_to_bare_uvicorn=round(nw_html["rps"] / bare_html["rps"], 3),
            json_ratio_to_bare_uvicorn=round(nw_json["rps"] / bare_json["rps"], 3),
            page_bytes={"html": len(html), "json": len(js)},
        )
        server.stop()
        from nightwheels.config import Settings
        from nightwheels.services.context import Services

        services = Services.from_settings(Settings(data=tmp / "data"))
        add_bulk_rows(services, args.bulk)
        services.close()
        server = LiveServer(data=tmp / "data")
        server.start("--workers", str(args.workers))
        wrk(server.url + PAGE, 2, args.connections)
        big_html = wrk(server.url + PAGE, args.duration, args.connections)
        results.update(
            bulk_files=args.bulk,
            nightwheels_html_with_bulk=big_html,
            bulk_ratio=round(big_html["rps"] / nw_html["rps"], 3),
        )
    finally:
        server.stop()
        if previous is not None:
            previous.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if baseline:
        results["baseline"] = baseline
    out = Path(__file__).parent / "results" / "simple_page.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
