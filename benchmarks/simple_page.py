"""Simple-page throughput: nightwheels against nginx serving the same bytes, same run.

Corpus: 20 projects x 10 nightly versions x 21 wheels (4,200 files), built through the
publish service. Load: wrk from another process on loopback. Then 100,000 more files in
other projects, and the same page again (its cost must not depend on the rest of the index).

    .venv/bin/python benchmarks/simple_page.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._corpus import add_bulk_rows, build_corpus
from tests.support.server import LiveServer, free_port

JSON = "application/vnd.pypi.simple.v1+json"
PAGE = "/simple/proj07/"


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
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root.parent)])
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bulk", type=int, default=100_000)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        sys.exit("needs wrk and nginx (Debian packages wrk, nginx-light)")

    tmp = Path(tempfile.mkdtemp(prefix="nw-bench-"))
    tmp.chmod(0o755)  # nginx workers run as an unprivileged user
    t0 = time.perf_counter()
    services = build_corpus(tmp / "data")
    services.close()
    build_seconds = time.perf_counter() - t0

    server = LiveServer(data=tmp / "data")
    server.start("--workers", str(args.workers))
    results: dict[str, object] = {
        "corpus_files": 4200,
        "corpus_build_s": round(build_seconds, 1),
        "workers": args.workers,
        "connections": args.connections,
    }
    try:
        url = server.url + PAGE
        html = httpx.get(url).content
        js = httpx.get(url, headers={"Accept": JSON}).content
        static = tmp / "static"
        (static / "simple" / "proj07").mkdir(parents=True)
        (static / "simple" / "proj07" / "index.html").write_bytes(html)
        (static / "simple" / "proj07" / "json").write_bytes(js)
        nginx_port = free_port()
        nginx = start_nginx(static, nginx_port, args.workers)
        try:
            for _ in range(2):  # warm up
                wrk(url, 2, args.connections)
            nginx_html = wrk(
                f"http://127.0.0.1:{nginx_port}{PAGE}", args.duration, args.connections
            )
            nw_html = wrk(url, args.duration, args.connections)
            nginx_json = wrk(
                f"http://127.0.0.1:{nginx_port}{PAGE}json", args.duration, args.connections
            )
            nw_json = wrk(url, args.duration, args.connections, accept=JSON)
        finally:
            nginx.terminate()
            nginx.wait()
        results.update(
            nginx_html=nginx_html,
            nightwheels_html=nw_html,
            nginx_json=nginx_json,
            nightwheels_json=nw_json,
            html_ratio=round(nw_html["rps"] / nginx_html["rps"], 3),
            json_ratio=round(nw_json["rps"] / nginx_json["rps"], 3),
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
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(__file__).parent / "results" / "simple_page.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
