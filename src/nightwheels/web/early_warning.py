"""Public pages of the early warning: the compatibility matrix (``/compat/``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from nightwheels.core.verdicts import Verdict
from nightwheels.services import compat_matrix
from nightwheels.web.public import _public
from nightwheels.web.security import page, services_of
from nightwheels.web.templating import render

LABELS = {
    Verdict.PASSED: "passed",
    Verdict.CULPRIT: "failed: culprit",
    Verdict.FAILED_OTHER: "failed: other cause",
    Verdict.COULD_NOT_RUN: "could not run",
    Verdict.STALE: "stale",
}
SYMBOLS = {
    Verdict.PASSED: "✓",
    Verdict.CULPRIT: "✗",
    Verdict.FAILED_OTHER: "!",
    Verdict.COULD_NOT_RUN: "?",
    Verdict.STALE: "…",
}


def _filter(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value[: compat_matrix.MAX_FILTER] or None


@page
async def matrix(request: Request) -> Response:
    services = services_of(request)
    python, platform = _filter(request, "python"), _filter(request, "platform")

    def load() -> compat_matrix.Matrix:
        with services.db.read() as session:
            return compat_matrix.matrix(session, python=python, platform=platform)

    view = await run_in_threadpool(load)
    context = {"view": view, "labels": LABELS, "symbols": SYMBOLS, "Verdict": Verdict}
    return _public(render(request, "compat.html", context), request)
