"""An HTTP server on loopback that records every request: a webhook sink, and the few GitHub
REST endpoints for issues (GitHub itself is out of reach in tests).

The real clients are pointed at ``url`` (``NIGHTWHEELS_GITHUB_API_URL``,
``NIGHTWHEELS_NOTIFY_WEBHOOK_URL``).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeGitHub:
    token: str = "gh-test-token"
    login: str = "nightwheels-bot"
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def close_by_hand(self, repo: str, number: int, when: datetime) -> None:
        issue = self.issues[repo][number - 1]
        issue["state"] = "closed"
        issue["closed_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.github = FakeGitHub()
        self.hook_status = 204
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urlparse(self.path)
                rec = Recorded(
                    self.command,
                    parsed.path,
                    parse_qs(parsed.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with recorder._lock:
                    recorder.requests.append(rec)
                    status, payload = recorder._route(rec)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    # -- routes ------------------------------------------------------------------------
    def _route(self, rec: Recorded) -> tuple[int, Any]:
        if rec.path == "/hook":
            return self.hook_status, None
        gh = self.github
        if rec.headers.get("authorization") != f"Bearer {gh.token}":
            return 401, {"message": "Bad credentials"}
        if rec.path == "/user":
            return 200, {"login": gh.login}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+))?(/comments)?", rec.path)
        if not m:
            return 404, {"message": "Not Found"}
        repo, number, comments = m.group(1), m.group(2), m.group(3)
        issues = gh.issues.setdefault(repo, [])
        if number is None:
            if rec.method == "GET":
                state = rec.query.get("state", ["open"])[0]
                creator = rec.query.get("creator", [None])[0]
                found = [
                    i
                    for i in reversed(issues)
                    if (state == "all" or i["state"] == state)
                    and (creator is None or i["user"]["login"] == creator)
                ]
                return 200, found
            data = rec.json()
            issue = {
                "number": len(issues) + 1,
                "state": "open",
                "title": data["title"],
                "body": data["body"],
                "user": {"login": gh.login},
                "closed_at": None,
            }
            issues.append(issue)
            return 201, issue
        n = int(number)
        if n > len(issues):
            return 404, {"message": "Not Found"}
        issue = issues[n - 1]
        if comments:
            gh.comments.setdefault((repo, n), []).append(rec.json()["body"])
            return 201, {"id": len(gh.comments[(repo, n)])}
        if rec.method == "PATCH":
            data = rec.json()
            if data.get("state") == "closed":
                issue["state"] = "closed"
                issue["closed_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 200, issue
        return 200, issue
