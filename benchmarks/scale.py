"""Scale-out figures: PostgreSQL + S3 against the embedded default, measured in one run.

1. Simple-page throughput (wrk, one server process each, same corpus) for the embedded
   default (SQLite + folder) and the scale-out configuration (PostgreSQL + S3 on moto),
   alternating rounds; the target is a ratio of at least 0.8. The static export of the
   same index behind nginx is the ceiling (the "CDN mode").
2. Cross-process coherence: the cost of one serial poll (SQLite and PostgreSQL), the
   server's throughput with the poll on and effectively off, the delay from an upload on
   one server to its visibility on another, and PostgreSQL LISTEN/NOTIFY latency for
   comparison.
3. Queries at size: after adding ``--bulk`` file rows in 100-file projects (default
   1,000,000 rows, 10,000 projects) to PostgreSQL: the poll, a changed-projects scan, a
   cache-miss page render, the file lookup behind /files/ and the project-list render.
4. File bytes: through the server from the folder (sendfile), through the server from S3,
   and the 302 to a presigned URL.

    .venv/bin/python benchmarks/scale.py [--duration 8] [--bulk 1000000]

5. ``index-size``: what issue 19 measured at 10k, 100k and 500k files (rows seeded directly,
   48 files a project: 24 nightly versions x 2 tags): the server time of the pages that
   summarise the whole index and of the first /simple/ render after start, simple-page p99
   while one client loops on each of them (item 1); a prune removing half the index, its
   wall time and the simple-page p99 during it (item 6); uploads with 8 clients, PostgreSQL
   against SQLite (item 7).

    .venv/bin/python benchmarks/scale.py index-size [--sizes 10000,100000] [--with-500k]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._corpus import build_corpus
from benchmarks.simple_page import launch_nginx, wrk
from tests.support.backends import Backend, MotoS3, fresh_database, pg_user
from tests.support.server import LiveServer, free_port
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
PAGE = "/simple/proj07/"


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    """Median and p99 of ``n`` calls, in microseconds."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1),
    }


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["rps"])


def page_throughput(
    embedded: LiveServer, scaled: LiveServer, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for accept, label in ((None, "html"), (JSON, "json")):
        runs: dict[str, list[dict[str, float]]] = {"embedded": [], "scaled": []}
        for server in (embedded, scaled):
            wrk(server.url + PAGE, 2, args.connections, accept)  # warm up
        for _ in range(args.rounds):
            runs["embedded"].append(
                wrk(embedded.url + PAGE, args.duration, args.connections, accept)
            )
            runs["scaled"].append(wrk(scaled.url + PAGE, args.duration, args.connections, accept))
        e, s = best(runs["embedded"]), best(runs["scaled"])
        out[label] = {
            "embedded": e,
            "scaled": s,
            "rounds_rps": {k: [r["rps"] for r in v] for k, v in runs.items()},
            "ratio": round(s["rps"] / e["rps"], 3),
        }
    return out


def poll_costs(embedded_data: Path, scaled_backend: Backend, scaled_data: Path) -> dict[str, Any]:
    from nightwheels.config import Settings
    from nightwheels.server.pages import PageCache
    from nightwheels.services.context import Services

    out: dict[str, Any] = {}
    embedded = Services.from_settings(Settings(data=embedded_data))
    scaled = scaled_backend.services(scaled_data)
    for name, services in (("sqlite", embedded), ("postgresql", scaled)):
        cache = PageCache(services)
        cache.refresh()
        out[name] = timed(cache.refresh, 3000)
        services.close()
    return out


def listen_notify_latency(database_url: str, n: int = 200) -> dict[str, float]:
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    listener = psycopg.connect(dsn, autocommit=True)
    sender = psycopg.connect(dsn, autocommit=True)
    listener.execute("LISTEN nightwheels_bench")
    samples = []
    received = threading.Event()
    sent_at = [0.0]

    def listen() -> None:
        for _ in listener.notifies():
            samples.append((time.perf_counter() - sent_at[0]) * 1e6)
            received.set()
            if len(samples) >= n:
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.2)
    for i in range(n):
        received.clear()
        sent_at[0] = time.perf_counter()
        sender.execute(f"NOTIFY nightwheels_bench, '{i}'")
        received.wait(2)
    thread.join(5)
    sender.close()
    listener.close()
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1),
    }


def propagation(a: LiveServer, b: LiveServer, token: str, tmp: Path, n: int) -> dict[str, Any]:
    """Seconds from an upload's 200 on server A to the file on server B's page."""
    delays = []
    for i in range(n):
        wheel = make_wheel(tmp / f"prop{i}", "proj00", f"9.0.dev{i}")
        data = wheel.read_bytes()
        response = httpx.post(
            a.upload_url,
            auth=("__token__", token),
            data={
                ":action": "file_upload",
                "name": "proj00",
                "version": f"9.0.dev{i}",
                "sha256_digest": hashlib.sha256(data).hexdigest(),
            },
            files={"content": (wheel.name, data)},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        done = time.perf_counter()
        while wheel.name not in httpx.get(b.url + "/simple/proj00/").text:
            time.sleep(0.005)
        delays.append(time.perf_counter() - done)
        time.sleep(0.05 * (i % 5))  # spread the uploads over the poll phase
    delays.sort()
    return {
        "samples": n,
        "median_s": round(statistics.median(delays), 3),
        "max_s": round(delays[-1], 3),
        "mean_s": round(statistics.mean(delays), 3),
    }


def upload_rate(
    servers: list[LiveServer], token: str, project: str, tmp: Path, n: int
) -> dict[str, float]:
    """``n`` uploads of distinct small wheels from 16 threads, spread over ``servers``."""
    from concurrent.futures import ThreadPoolExecutor

    wheels = [make_wheel(tmp / f"up{i}", project, f"7.0.dev{i}") for i in range(n)]

    def send(i: int) -> int:
        data = wheels[i].read_bytes()
        return httpx.post(
            servers[i % len(servers)].upload_url,
            auth=("__token__", token),
            data={
                ":action": "file_upload",
                "name": project,
                "version": f"7.0.dev{i}",
                "sha256_digest": hashlib.sha256(data).hexdigest(),
            },
            files={"content": (wheels[i].name, data)},
            timeout=120,
        ).status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(n)))
    seconds = time.perf_counter() - t0
    assert codes == [200] * n, codes
    return {"uploads": n, "servers": len(servers), "per_s": round(n / seconds, 1)}


def queries_at_size(services: Any, bulk: int) -> dict[str, Any]:
    """Read-path queries on PostgreSQL with ``bulk`` more file rows in 100-file projects."""
    from sqlalchemy import func, select, text

    from benchmarks._corpus import add_bulk_rows
    from nightwheels.db.models import File, Project
    from nightwheels.server.pages import _render_index, _render_project
    from nightwheels.services import listing, serials

    t0 = time.perf_counter()
    for _ in range(bulk // 100_000):
        add_bulk_rows(services, 100_000, per_project=100)
    with services.db.write() as session:
        session.execute(text("ANALYZE"))
        files = session.execute(select(func.count(File.id))).scalar_one()
        projects = session.execute(select(func.count(Project.id))).scalar_one()
        probe = session.execute(select(File.sha256, File.filename).order_by(File.id.desc())).first()
    out: dict[str, Any] = {
        "files": files,
        "projects": projects,
        "load_s": round(time.perf_counter() - t0, 1),
    }
    with services.db.read() as session:
        top = serials.current(session)
        out["poll_serial"] = timed(lambda: serials.current(session), 500)
        out["changed_since_one_change"] = timed(
            lambda: serials.changed_since(session, top - 1), 200
        )
        out["changed_since_all_projects"] = timed(lambda: serials.changed_since(session, -1), 20)

        def miss() -> None:
            found = listing.load_listing(session, "proj07", "main", root="../../")
            assert found is not None
            _render_project(found)

        out["project_page_miss_4200_files"] = timed(miss, 50)
        digest, filename = probe
        out["file_lookup"] = timed(lambda: listing.find_file(session, digest[:32], filename), 500)
        out["project_list_full_render"] = timed(
            lambda: _render_index(listing.list_project_names(session, "main")), 5
        )
        plan = session.execute(
            text(
                "EXPLAIN SELECT * FROM files WHERE sha256 >= :p AND sha256 < :q "
                "AND sha256 LIKE :l AND filename = :f LIMIT 1"
            ),
            {"p": digest[:32], "q": digest[:32] + "g", "l": digest[:32] + "%", "f": filename},
        ).scalars()
        out["file_lookup_plan"] = [line for line in plan][:3]
    # The server's project list after one project changed: only that project is re-read.
    from nightwheels.server.pages import PageCache

    cache = PageCache(services)
    cache.refresh()
    cache.index("main")
    samples = []
    for i in range(20):
        with services.db.write() as session:
            project = session.execute(
                select(Project).where(Project.name == f"proj{i % 20:02d}")
            ).scalar_one()
            serials.bump(session, project)
        cache.refresh()
        t0 = time.perf_counter()
        cache.index("main")
        samples.append((time.perf_counter() - t0) * 1e6)
    out["project_list_after_one_change"] = {"median_us": round(statistics.median(samples), 1)}
    return out


def file_bytes(
    embedded: LiveServer, scaled: LiveServer, redirect: LiveServer, args: argparse.Namespace
) -> dict[str, Any]:
    entry = httpx.get(embedded.url + PAGE, headers={"Accept": JSON}).json()["files"][0]
    path = "/simple/proj07/" + entry["url"]
    url = str(httpx.URL(embedded.url + path))
    rel = url[len(embedded.url) :]
    out: dict[str, Any] = {"size": entry["size"]}
    for name, server in (
        ("folder_sendfile", embedded),
        ("s3_proxied", scaled),
        ("s3_redirect_302", redirect),
    ):
        out[name] = wrk(server.url + rel, max(3, args.duration // 2), 8)
    return out


# The nginx configuration docs/scale.md gives for a static export (PEP 691 by Accept).
EXPORT_NGINX = """
worker_processes 1;
daemon off;
error_log {log}/nginx-error.log;
pid {log}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            types {{ application/octet-stream whl; text/plain metadata; }}
            default_type application/octet-stream;
        }}
        location ~ ^(/label/[^/]+)?/simple/ {{
            index $simple_index;
            types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
            add_header Vary Accept;
            add_header Cache-Control "max-age=60, must-revalidate";
        }}
    }}
}}
"""


def start_export_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    conf = root.parent / "export-nginx.conf"
    conf.write_text(EXPORT_NGINX.format(log=root.parent, port=port, root=root))
    return launch_nginx(conf, root.parent, port)


def check_export_negotiation(static_url: str, server_url: str) -> None:
    """The static host answers like the server: HTML by default, JSON when asked."""
    pip_accept = f"{JSON}, application/vnd.pypi.simple.v1+html;q=0.1, text/html;q=0.01"
    for accept in (None, "text/html", pip_accept, JSON):
        headers = {"Accept": accept} if accept else {}
        static = httpx.get(static_url, headers=headers)
        served = httpx.get(server_url, headers=headers)
        assert static.status_code == 200, (accept, static.status_code)
        assert static.content == served.content, accept
        assert (
            static.headers["content-type"].split(";")[0]
            == served.headers["content-type"].split(";")[0]
        ), accept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--propagation-samples", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=100)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        sys.exit("needs wrk and nginx (Debian packages wrk, nginx-light)")
    pg_user()  # fails early when PostgreSQL is not there

    from nightwheels.db.migrate import upgrade
    from nightwheels.services.export import export_static
    from nightwheels.services.migrate import migrate_index
    from nightwheels.storage.static import FolderTarget

    tmp = Path(tempfile.mkdtemp(prefix="nw-scale-"))
    tmp.chmod(0o755)
    moto = MotoS3(tmp)
    results: dict[str, Any] = {
        "connections": args.connections,
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
    }
    servers: list[LiveServer] = []
    try:
        with fresh_database() as url, moto.fresh_bucket() as bucket:
            backend = Backend("postgres", database_url=url, bucket=bucket, s3=moto)
            t0 = time.perf_counter()
            services = build_corpus(tmp / "embedded")
            results["corpus"] = {"files": 4200, "build_s": round(time.perf_counter() - t0, 1)}
            upgrade(url)
            target = backend.services(tmp / "scaled")
            t0 = time.perf_counter()
            migrated = migrate_index(services, target)
            results["migrate_to_postgres_s3"] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "blobs": migrated.blobs_copied,
                "rows": sum(migrated.rows.values()),
            }
            t0 = time.perf_counter()
            exported = export_static(services, FolderTarget(tmp / "static"))
            results["export_static_full_s"] = round(time.perf_counter() - t0, 1)
            results["export_static_files"] = exported.files
            services.close()

            embedded = LiveServer(data=tmp / "embedded")
            scaled = LiveServer(data=tmp / "scaled", backend=backend)
            scaled_b = LiveServer(data=tmp / "scaled-b", backend=backend)
            redirect = LiveServer(
                data=tmp / "scaled-r", backend=backend, env={"NIGHTWHEELS_REDIRECT_FILES": "1"}
            )
            no_poll = LiveServer(
                data=tmp / "scaled-np",
                backend=backend,
                env={"NIGHTWHEELS_SERIAL_POLL_INTERVAL": "100000"},
            )
            for server in (embedded, scaled, scaled_b, redirect, no_poll):
                server.data.mkdir(parents=True, exist_ok=True)
                server.start()
                servers.append(server)
            for server in (scaled_b, redirect, no_poll):
                server.stop()  # started once each to check they come up; run one at a time

            results["simple_page"] = page_throughput(embedded, scaled, args)
            nginx_port = free_port()
            nginx = start_export_nginx(tmp / "static", nginx_port)
            try:
                static_url = f"http://127.0.0.1:{nginx_port}{PAGE}"
                check_export_negotiation(static_url, scaled.url + PAGE)
                wrk(static_url, 2, args.connections)
                results["simple_page"]["static_export_nginx_html"] = wrk(
                    static_url, args.duration, args.connections
                )
                results["simple_page"]["static_export_nginx_json"] = wrk(
                    static_url, args.duration, args.connections, JSON
                )
            finally:
                nginx.terminate()
                nginx.wait()

            # The poll's cost: in-process, and as server throughput with it on and off.
            results["serial_poll"] = poll_costs(tmp / "embedded", backend, tmp / "scaled-poll")
            results["serial_poll"]["listen_notify_postgresql"] = listen_notify_latency(url)
            no_poll.start()
            wrk(no_poll.url + PAGE, 2, args.connections)
            on, off = [], []
            for _ in range(args.rounds + 1):
                off.append(wrk(no_poll.url + PAGE, args.duration, args.connections)["rps"])
                on.append(wrk(scaled.url + PAGE, args.duration, args.connections)["rps"])
            no_poll.stop()
            poll = results["serial_poll"]
            poll["throughput_poll_on_rps"] = on
            poll["throughput_poll_off_rps"] = off
            poll["throughput_on_off_ratio_best"] = round(max(on) / max(off), 3)
            poll["postgresql_queries_per_server_per_s"] = 4
            poll["postgresql_poll_busy_fraction"] = round(
                4 * poll["postgresql"]["median_us"] / 1e6, 5
            )

            scaled_b.start()
            scaled.create_user("prop", admin=True)
            token = scaled.token("prop", "proj00")
            results["propagation"] = propagation(
                scaled, scaled_b, token, tmp / "prop", args.propagation_samples
            )
            results["upload_rate"] = {
                "scaled_two_servers": upload_rate(
                    [scaled, scaled_b], token, "proj00", tmp / "up-s", args.uploads
                )
            }
            scaled_b.stop()
            embedded.create_user("up", admin=True)
            results["upload_rate"]["embedded_one_server"] = upload_rate(
                [embedded], embedded.token("up", "proj01"), "proj01", tmp / "up-e", args.uploads
            )

            redirect.start()
            results["file_bytes"] = file_bytes(embedded, scaled, redirect, args)
            redirect.stop()

            for server in servers:
                server.stop()
            if args.bulk:
                bulk_services = backend.services(tmp / "scaled")
                results["postgresql_at_size"] = queries_at_size(bulk_services, args.bulk)
                bulk_services.close()
    finally:
        for server in servers:
            server.stop()
        moto.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()[0]
    out = Path(__file__).parent / "results" / "scale.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


# -- index-size (issue 19) --------------------------------------------------------------

SUMMARY_PAGES = ["/freshness/", "/", "/-/metrics", "/api/v1/projects", "/simple/"]
SIZE_TAGS = ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-macosx_11_0_arm64")
SIZE_VERSIONS = 24


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class SimpleLoad:
    """Two clients on random simple pages, collecting (wall time, latency ms)."""

    def __init__(self, url: str, names: list[str], clients: int = 2) -> None:
        import random

        self.url, self.names = url, names
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(random.Random(i),), daemon=True)
            for i in range(clients)
        ]

    def _run(self, rng: Any) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                t = time.perf_counter()
                client.get(f"{self.url}/simple/{rng.choice(self.names)}/")
                self.samples.append((time.time(), (time.perf_counter() - t) * 1000))

    def start(self) -> SimpleLoad:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def p99(self, start: float, end: float) -> float:
        window = [ms for at, ms in self.samples if start <= at <= end]
        return round(_percentile(window, 0.99), 2) if window else float("nan")


def _page_times(url: str, path: str, n: int) -> dict[str, float]:
    with httpx.Client(timeout=120) as client:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            r = client.get(url + path)
            samples.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code)
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(_percentile(samples, 0.9), 2),
    }


def _looping(url: str, path: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            client.get(url + path)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone: its time is lost, which only under-counts
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if title.startswith("postgres: ") and f" {database} " in title:
                pids.append(int(entry.name))
    return pids


class _Uploads:
    """Clients uploading distinct small wheels of one project to one server, in windows."""

    def __init__(self, live: LiveServer, tmp: Path, database: str | None = None) -> None:
        self.live, self.tmp, self.database = live, tmp, database
        self.stats = None
        if database:
            import psycopg

            self.stats = psycopg.connect(
                f"host=127.0.0.1 user={pg_user()} dbname={database}", autocommit=True
            )
        live.create_user("bench-up", admin=True)
        self.token = live.token("bench-up", "uprate")
        self.made = 0
        self.ready: list[tuple[str, str, bytes]] = []
        self._prepare(1)
        with httpx.Client(timeout=120) as client:
            self._send(client, *self.ready.pop())  # creates the project

    def _sessions(self) -> int:
        """Connections the database has accepted so far (a pool that opens and closes
        connections under load shows here)."""
        assert self.stats is not None
        row = self.stats.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.database,)
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self.stats is not None:
            self.stats.close()

    def _prepare(self, n: int) -> None:
        while len(self.ready) < n:
            version = f"1.0.dev{self.made}"
            wheel = make_wheel(self.tmp / f"w{self.made}", "uprate", version)
            self.ready.append((version, wheel.name, wheel.read_bytes()))
            self.made += 1

    def _send(self, client: httpx.Client, version: str, name: str, data: bytes) -> None:
        r = client.post(
            self.live.upload_url,
            auth=("__token__", self.token),
            data={
                ":action": "file_upload",
                "name": "uprate",
                "version": version,
                "sha256_digest": hashlib.sha256(data).hexdigest(),
            },
            files={"content": (name, data)},
        )
        assert r.status_code == 200, r.text

    def window(self, clients: int, seconds: float, expect_per_s: float) -> dict[str, float]:
        """``clients`` threads uploading for ``seconds``; what finished within them counts."""
        self._prepare(int(expect_per_s * seconds * 2) + 50)
        wheels, self.ready = self.ready, []
        latencies: list[float] = []
        pids = [self.live.process.pid] if self.live.process else []
        database = self.database

        def client_loop() -> None:
            with httpx.Client(timeout=120) as client:
                while wheels:
                    try:
                        wheel = wheels.pop()
                    except IndexError:
                        break
                    t = time.perf_counter()
                    self._send(client, *wheel)
                    done = time.perf_counter()
                    if done > deadline:
                        break
                    latencies.append((done - t) * 1000)

        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        # The database's server processes come and go with the pool's connections: sample
        # their CPU while the window runs, keeping each one's last value.
        seen: dict[int, float] = {}
        sampling = threading.Event()

        waits: dict[str, int] = {}
        samples = 0

        def sample() -> None:
            nonlocal samples
            while database and not sampling.wait(0.05):
                # What the database's connections are doing (wait event "Lock/transactionid":
                # on another transaction's row lock, the serial's; "IO/WALSync": a commit's
                # flush; "idle in transaction": waiting for the server's next statement).
                assert self.stats is not None
                for state, kind, event in self.stats.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ):
                    key = f"{state}:{kind}/{event}" if kind and state != "idle" else str(state)
                    waits[key] = waits.get(key, 0) + 1
                samples += 1
                if samples % 4 == 0:
                    for pid in _postgres_backends(database):
                        seen[pid] = _cpu_seconds([pid])

        sample_once = threading.Thread(target=sample)
        if database:
            for pid in _postgres_backends(database):
                seen[pid] = _cpu_seconds([pid])
        db_before = dict(seen)
        sessions = self._sessions() if database else 0
        cpu_server = _cpu_seconds(pids)
        deadline = time.perf_counter() + seconds
        sample_once.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sampling.set()
        sample_once.join()
        n = len(latencies)
        out = {
            "uploads": n,
            "per_s": round(n / seconds, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else float("nan"),
            # CPU per counted upload (the uploads still in flight at the end add a little)
            "server_cpu_ms": round((_cpu_seconds(pids) - cpu_server) * 1000 / max(n, 1), 2),
            "load_average": os.getloadavg()[0],
        }
        if database:
            for pid in _postgres_backends(database):
                seen[pid] = _cpu_seconds([pid])
            used = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in seen.items())
            out["database_cpu_ms"] = round(used * 1000 / max(n, 1), 2)
            out["connections_opened"] = self._sessions() - sessions - 1  # less this query's
            # connections in each state, on average over the window
            out["connections_by_state"] = {
                k: round(v / max(samples, 1), 2) for k, v in sorted(waits.items())
            }
        return out


def _upload_rounds(
    servers: dict[str, tuple[LiveServer, str | None]], tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Uploads from ``args.upload_clients`` clients to each server in turn, in windows of
    ``args.upload_seconds``, the order alternating from round to round (so a change in the
    machine's load falls on both); a round's ratio compares the two windows next to it."""
    uploads = {name: _Uploads(live, tmp / name, db) for name, (live, db) in servers.items()}
    names = list(servers)
    for uploader in uploads.values():  # warm up: connections, statement caches
        uploader.window(args.upload_clients, 1.0, 50)
    windows: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for r in range(args.upload_rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                last = windows[name][-1]["per_s"] if windows[name] else 50
                windows[name].append(
                    uploads[name].window(args.upload_clients, args.upload_seconds, last)
                )
    finally:
        for uploader in uploads.values():
            uploader.close()

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }

    out: dict[str, Any] = {
        "clients": args.upload_clients,
        "rounds": args.upload_rounds,
        "seconds_per_window": args.upload_seconds,
    }
    for name in names:
        out[f"uploads_{name}"] = {
            "per_s": summary([w["per_s"] for w in windows[name]]),
            "p50_ms": summary([w["p50_ms"] for w in windows[name]]),
            "server_cpu_ms": summary([w["server_cpu_ms"] for w in windows[name]]),
            "windows": windows[name],
        }
        if "database_cpu_ms" in windows[name][0]:
            out[f"uploads_{name}"]["database_cpu_ms"] = summary(
                [w["database_cpu_ms"] for w in windows[name]]
            )
            out[f"uploads_{name}"]["connections_opened"] = sum(
                w["connections_opened"] for w in windows[name]
            )
    if len(names) == 2:
        a, b = names
        ratios = [wb["per_s"] / wa["per_s"] for wa, wb in zip(windows[a], windows[b], strict=True)]
        out[f"uploads_{b}_vs_{a}"] = summary(ratios) | {"rounds": [round(x, 2) for x in ratios]}
    return out


def _seed(data: Path, files: int, database_url: str | None = None) -> tuple[int, list[str]]:
    from tests.support.seed import bulk_seed, open_services

    projects = max(1, files // (SIZE_VERSIONS * len(SIZE_TAGS)))
    services = open_services(data, database_url=database_url)
    try:
        count = bulk_seed(services, projects=projects, versions=SIZE_VERSIONS, tags=SIZE_TAGS)
        if database_url:
            from sqlalchemy import text

            with services.db.write() as session:
                session.execute(text("ANALYZE"))
    finally:
        services.close()
    return count, [f"proj{i:05d}" for i in range(projects)]


def index_size(files: int, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"files": files}

    def checkpoint() -> None:  # a long run keeps what it measured if stopped later
        print(json.dumps({"partial": out}), file=sys.stderr, flush=True)

    data = tmp / f"sqlite-{files}" / "data"
    t0 = time.perf_counter()
    cached = args.seed_cache / f"sqlite-{files}" if args.seed_cache else None
    if cached is not None and (cached / "seeded.json").exists():
        shutil.copytree(cached / "data", data)  # a prune changes it: work on a copy
        seeded, names = json.loads((cached / "seeded.json").read_text())
    else:
        seeded, names = _seed(data, files)
        if cached is not None:
            shutil.copytree(data, cached / "data")
            (cached / "seeded.json").write_text(json.dumps([seeded, names]))
    out.update(seeded=seeded, projects=len(names), seed_s=round(time.perf_counter() - t0, 1))
    parts = set(args.parts.split(","))
    env = {
        "NIGHTWHEELS_RETENTION_KEEP": str(SIZE_VERSIONS // 2),
        "NIGHTWHEELS_RETENTION_DAYS": "365",
        "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
    }
    live = LiveServer(data=data, env=env, in_thread=False)  # its own process, as deployed
    live.start()
    try:
        # Item 1: the first project list after start, then each summary page.
        t = time.perf_counter()
        assert httpx.get(live.url + "/simple/", timeout=120).status_code == 200
        out["first_simple_index_ms"] = round((time.perf_counter() - t) * 1000, 1)
        # A server's first seconds include its own start-up work (the JSON API is built
        # after a second, templates compile on first use): time the pages after it.
        time.sleep(args.settle)
        if "pages" in parts:
            out["pages"] = {p: _page_times(live.url, p, args.page_requests) for p in SUMMARY_PAGES}
            checkpoint()
        sample = names[:: max(1, len(names) // 200)]
        for name in sample:
            httpx.get(f"{live.url}/simple/{name}/")
        load = SimpleLoad(live.url, sample).start()
        try:
            time.sleep(args.window)
            idle_end = time.time()
            idle = load.p99(idle_end - args.window, idle_end)
            out["simple_p99_idle_ms"] = idle
            looping: dict[str, Any] = {}
            # The reference: one more client looping on a cached simple page (the same
            # extra request rate, none of the summary work).
            for path in [f"/simple/{names[0]}/", *SUMMARY_PAGES] if "looping" in parts else []:
                stop = threading.Event()
                thread = threading.Thread(target=_looping, args=(live.url, path, stop))
                start = time.time()
                thread.start()
                time.sleep(args.window)
                end = time.time()
                stop.set()
                thread.join()
                p99 = load.p99(start, end)
                looping[path] = {"p99_ms": p99, "ratio": round(p99 / idle, 2)}
            if looping:
                out["simple_p99_with_one_looping_client"] = looping
                checkpoint()
            # Item 6: prune half the index from another process, serving meanwhile.
            if "prune" in parts:
                time.sleep(1)
                begin = time.time()
                load_before = os.getloadavg()[0]
                pruned = subprocess.run(  # its own process, as cron runs it
                    [sys.executable, "-m", "nightwheels", "prune", "--force"],
                    env=live._env(),
                    capture_output=True,
                    text=True,
                    timeout=3600,
                    check=True,
                )
                end = time.time()
                out["prune"] = {
                    "seconds": round(end - begin, 1),
                    "outcome": pruned.stderr.strip().splitlines()[-1],
                    "simple_p99_ms": load.p99(begin, end),
                    "p99_ratio": round(load.p99(begin, end) / idle, 2),
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg()[0],
                }
                checkpoint()
        finally:
            load.stop()
        # Item 7: uploads on SQLite and PostgreSQL at this size, in alternating windows.
        if "uploads" in parts:
            with contextlib.ExitStack() as stack:
                servers: dict[str, tuple[LiveServer, str | None]] = {"sqlite": (live, None)}
                if args.postgres:
                    url = stack.enter_context(fresh_database())
                    pg_data = tmp / f"pg-{files}" / "data"
                    _seed(pg_data, files, database_url=url)
                    pg = LiveServer(
                        data=pg_data, backend=Backend("postgres", database_url=url), in_thread=False
                    )
                    pg.start()
                    stack.callback(pg.stop)
                    servers["postgresql"] = (pg, url.rsplit("/", 1)[1])
                out.update(_upload_rounds(servers, tmp / f"up-{files}", args))
            checkpoint()
    finally:
        live.stop()
    return out


def index_size_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="scale.py index-size")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--with-500k", action="store_true", help="also 500,000 files")
    parser.add_argument("--page-requests", type=int, default=15)
    parser.add_argument("--window", type=float, default=6.0, help="seconds per p99 window")
    parser.add_argument("--upload-clients", type=int, default=8)
    parser.add_argument("--upload-rounds", type=int, default=6, help="windows per backend")
    parser.add_argument("--upload-seconds", type=float, default=5.0, help="seconds per window")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds after start before timing pages"
    )
    parser.add_argument(
        "--parts",
        default="pages,looping,prune,uploads",
        help="what to measure, comma-separated: pages, looping, prune, uploads",
    )
    parser.add_argument(
        "--seed-cache",
        type=Path,
        default=None,
        help="keep each size's seeded index here and start later runs from a copy of it",
    )
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.with_500k:
        sizes.append(500_000)
    tmp = Path(tempfile.mkdtemp(prefix="nw-size-"))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    try:
        for files in sizes:
            results[str(files)] = index_size(files, tmp, args)
            print(json.dumps({str(files): results[str(files)]}, indent=2), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = results[str(sizes[0])]
    if "pages" not in base:
        sizes = sizes[:1]  # no page times to compare
    results["ratios_to_smallest"] = {
        str(files): {
            page: round(
                results[str(files)]["pages"][page]["median_ms"] / base["pages"][page]["median_ms"],
                2,
            )
            for page in SUMMARY_PAGES
        }
        for files in sizes[1:]
    }
    results["load_average_at_end"] = os.getloadavg()[0]
    out = args.output or Path(__file__).parent / "results" / "scale-index-size.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["index-size"]:
        index_size_main(sys.argv[2:])
    else:
        main()
