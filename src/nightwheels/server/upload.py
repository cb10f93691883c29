"""The legacy upload endpoint (``POST /legacy/``), as twine and ``uv publish`` speak it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nightwheels.core.names import DEFAULT_LABEL
from nightwheels.errors import InvalidRequest, TooLarge, Unauthenticated
from nightwheels.server.auth import client_address, token_from_request
from nightwheels.server.multipart import parse_upload
from nightwheels.services.auth import Principal, authenticate_token
from nightwheels.services.context import Services
from nightwheels.services.publish import PublishResult, UploadRequest, publish
from nightwheels.services.throttle import FailureThrottle
from nightwheels.storage.staging import StagingFile

MULTIPART_OVERHEAD = 16 * 1024 * 1024  # room for form fields around the file


def authenticate_request(request: Request) -> Principal:
    """Authenticate before reading any body byte; throttle sources that keep failing."""
    services: Services = request.app.state.services
    throttle: FailureThrottle = request.app.state.throttle
    source = client_address(request)
    throttle.check(source)
    try:
        token = token_from_request(request)
        if token is None:
            raise Unauthenticated(
                "authentication required: use __token__ as user and a token as password"
            )
        return authenticate_token(services.db, token, source)
    except Unauthenticated:
        throttle.failed(source)
        raise


def _response(request: Request, result: PublishResult) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {
                "outcome": result.outcome,
                "project": result.project,
                "filename": result.filename,
                "version": result.version,
                "sha256": result.sha256,
                "size": result.size,
                "labels": result.labels,
                "warnings": result.warnings,
            }
        )
    lines = [f"OK: {result.filename} {result.outcome}"] + [f"warning: {w}" for w in result.warnings]
    return PlainTextResponse("\n".join(lines) + "\n")


async def legacy_upload(request: Request) -> Response:
    services: Services = request.app.state.services
    principal = await run_in_threadpool(authenticate_request, request)
    limit = services.settings.max_upload_size
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"the upload is larger than this index's limit of {limit} bytes")
    parsed = await parse_upload(
        request.headers.get("content-type"),
        request.stream(),
        lambda: StagingFile(services.settings.tmp_dir, limit),
    )
    staged = parsed.staged
    try:
        action = parsed.get(":action")
        if action != "file_upload":
            raise InvalidRequest(f"unsupported :action {action!r}; this endpoint takes file_upload")
        if staged is None or not parsed.filename:
            raise InvalidRequest("the upload has no 'content' file field")
        for field in ("name", "version"):
            if not parsed.get(field):
                raise InvalidRequest(f"the upload has no {field!r} field")
        labels = tuple(parsed.fields.get("label", [])) or (DEFAULT_LABEL,)
        upload = UploadRequest(
            filename=parsed.filename,
            name=parsed.get("name") or "",
            version=parsed.get("version") or "",
            filetype=parsed.get("filetype"),
            sha256_digest=parsed.get("sha256_digest"),
            md5_digest=parsed.get("md5_digest"),
            blake2_256_digest=parsed.get("blake2_256_digest"),
            labels=labels,
        )
    except BaseException:
        if staged is not None:
            staged.path.unlink(missing_ok=True)
        raise
    result = await run_in_threadpool(publish, services, principal, upload, staged)
    return _response(request, result)


routes = [
    Route("/legacy/", legacy_upload, methods=["POST"]),
    Route("/legacy", legacy_upload, methods=["POST"]),
]
