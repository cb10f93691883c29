"""A loopback stand-in for the few GitHub REST endpoints a tracking issue uses.

It keeps issues and comments in memory, checks the bearer token, paginates with Link
headers, refuses bodies over GitHub's 65,536 characters with 422, and records every
request so tests can assert what the real client code sent.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BODY_LIMIT = 65_536


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    token: str = "ghs_test_token"
    login: str | None = "nightly-bot"  # None: GET /user answers 403, like an Actions token
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # repo -> issues
    comments: dict[int, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def author(self) -> str:
        return self.login or "github-actions[bot]"

    def add_issue(self, repo: str, *, title: str, body: str, user: str, state: str = "open") -> int:
        with self._lock:
            number = sum(len(v) for v in self.issues.values()) + 1
            self.issues.setdefault(repo, []).append(
                {
                    "number": number,
                    "title": title,
                    "body": body,
                    "state": state,
                    "user": {"login": user},
                    "labels": [],
                    "assignees": [],
                    "html_url": f"https://github.invalid/{repo}/issues/{number}",
                }
            )
            return number

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        return next(i for i in self.issues.get(repo, []) if i["number"] == number)

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.calls.append(Call(method, parts.path, query, body))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"message": "Bad credentials"})
                if self.headers.get("Accept") != "application/vnd.github+json":
                    return self._send(415, {"message": "wrong Accept"})
                fake._route(self, method, parts.path, query, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _route(self, h: Any, method: str, path: str, query: dict[str, str], body: Any) -> None:
        if path == "/user" and method == "GET":
            if self.login is None:
                return h._send(403, {"message": "Resource not accessible by integration"})
            return h._send(200, {"login": self.login})
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+)(/comments)?)?", path)
        if not m:
            return h._send(404, {"message": "Not Found"})
        repo, number, comments = m.group(1), m.group(2), m.group(3)
        if repo not in self.issues:
            return h._send(404, {"message": "Not Found"})
        if number is None and method == "GET":
            items = [
                i
                for i in self.issues[repo]
                if query.get("state", "open") in ("all", i["state"])
                and ("creator" not in query or i["user"]["login"] == query["creator"])
                and (
                    "labels" not in query
                    or set(query["labels"].split(",")) <= {lab["name"] for lab in i["labels"]}
                )
            ]
            items.sort(key=lambda i: -i["number"])
            per_page = int(query.get("per_page", 30))
            page = int(query.get("page", 1))
            chunk = items[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(items):
                rest = {**query, "page": str(page + 1)}
                link = f"{self.url}{path}?" + "&".join(f"{k}={v}" for k, v in rest.items())
                headers["Link"] = f'<{link}>; rel="next"'
            return h._send(200, chunk, headers)
        if number is None and method == "POST":
            if len(body.get("body") or "") > BODY_LIMIT:
                return h._send(422, {"message": "body is too long (maximum is 65536 characters)"})
            n = self.add_issue(repo, title=body["title"], body=body["body"], user=self.author())
            issue = self.issue(repo, n)
            issue["labels"] = [{"name": name} for name in body.get("labels") or []]
            issue["assignees"] = [{"login": name} for name in body.get("assignees") or []]
            return h._send(201, issue)
        try:
            issue = self.issue(repo, int(number))
        except StopIteration:
            return h._send(404, {"message": "Not Found"})
        if comments and method == "POST":
            if len(body.get("body") or "") > BODY_LIMIT:
                return h._send(422, {"message": "body is too long (maximum is 65536 characters)"})
            self.comments.setdefault(issue["number"], []).append(body["body"])
            return h._send(201, {"id": len(self.comments[issue["number"]]), "body": body["body"]})
        if not comments and method == "PATCH":
            if len(body.get("body") or "") > BODY_LIMIT:
                return h._send(422, {"message": "body is too long (maximum is 65536 characters)"})
            for key in ("title", "body", "state", "state_reason"):
                if key in body:
                    issue[key] = body[key]
            if "labels" in body:  # replaces them, as GitHub does
                issue["labels"] = [{"name": name} for name in body["labels"]]
            if "assignees" in body:
                issue["assignees"] = [{"login": name} for name in body["assignees"]]
            return h._send(200, issue)
        return h._send(405, {"message": "Method not allowed"})
