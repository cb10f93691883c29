"""Web UI server time on the 4,200-file corpus: no page may take over 200 ms.

Corpus: 20 projects x 10 nightly versions x 21 wheels (benchmarks/_corpus.py), with upload
times spread over the last 60 days (so the dashboard has stale projects and a full chart).
Each page is requested sequentially from another process; the server's own time comes from
the ``Server-Timing`` header the web layer sets (session, queries and rendering), the wall
time from the client. Reference in the same run: the cached simple page of the same project.

    .venv/bin/python benchmarks/web_pages.py [--requests 30]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._corpus import build_corpus
from nightwheels.db.models import File, Project
from nightwheels.services.context import Services
from tests.support.server import LiveServer

LIMIT_MS = 200.0
PUBLIC_PAGES = ["/", "/project/proj07/", "/freshness/", "/search?q=proj"]
REFERENCE = "/simple/proj07/"


def spread_upload_times(services: Services) -> None:
    """Project i last uploaded 3*i days ago; its versions one day apart before that."""
    now = datetime.now(UTC)
    with services.db.write() as session:
        projects = session.execute(select(Project.id, Project.name).order_by(Project.name)).all()
        for i, (project_id, _name) in enumerate(projects):
            versions = sorted(
                {
                    v
                    for (v,) in session.execute(
                        select(File.version).where(File.project_id == project_id)
                    )
                }
            )
            for j, version in enumerate(reversed(versions)):
                session.execute(
                    update(File)
                    .where(File.project_id == project_id, File.version == version)
                    .values(uploaded_at=now - timedelta(days=3 * i + j, hours=1))
                )


def measure(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(3):  # warm up
        client.get(path).raise_for_status()
    server, wall = [], []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        timing = response.headers.get("server-timing", "")
        match = re.search(r"dur=([\d.]+)", timing)
        if match:
            server.append(float(match.group(1)))
    result = {
        "wall_p50_ms": round(statistics.median(wall), 2),
        "wall_max_ms": round(max(wall), 2),
        "bytes": len(response.content),
    }
    if server:
        result["server_p50_ms"] = round(statistics.median(server), 2)
        result["server_max_ms"] = round(max(server), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nw-web-bench-"))
    t0 = time.perf_counter()
    services = build_corpus(tmp / "data")
    spread_upload_times(services)
    services.close()
    results: dict[str, object] = {
        "corpus_files": 4200,
        "corpus_build_s": round(time.perf_counter() - t0, 1),
        "requests_per_page": args.requests,
        "limit_ms": LIMIT_MS,
    }
    server = LiveServer(data=tmp / "data")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            reference = measure(client, REFERENCE, args.requests)
            pages = {path: measure(client, path, args.requests) for path in PUBLIC_PAGES}
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(p["server_max_ms"] for p in pages.values())
    results.update(
        reference_simple_page=reference,
        pages=pages,
        worst_server_ms=worst,
        worst_ratio_to_simple_page=round(
            max(p["wall_p50_ms"] for p in pages.values()) / reference["wall_p50_ms"], 1
        ),
        within_limit=worst <= LIMIT_MS,
    )
    out = Path(__file__).parent / "results" / "web_pages.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if worst > LIMIT_MS:
        sys.exit(f"a page took {worst} ms of server time (limit {LIMIT_MS} ms)")


if __name__ == "__main__":
    main()
