"""The upload endpoints.

``POST /legacy/`` is the legacy upload API, one file per request, as twine and
``uv publish`` speak it. ``POST /legacy/batch/`` takes several legacy forms in one
request (``nightwheels upload``) and answers each file on its own, in JSON: a nightly of
a hundred small wheels costs one authentication, one request and one transaction per
project instead of a hundred.
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nightwheels.core.names import DEFAULT_LABEL
from nightwheels.errors import InvalidRequest, NightwheelsError, TooLarge, Unauthenticated
from nightwheels.server.auth import authenticate
from nightwheels.server.multipart import MAX_BATCH_FILES, ParsedUpload, parse_batch, parse_upload
from nightwheels.server.state import app_state
from nightwheels.services.auth import Principal
from nightwheels.services.context import Services
from nightwheels.services.publish import PublishResult, UploadRequest, publish, publish_many
from nightwheels.storage.staging import MemoryBudget, StagedFile, StagingFile

MULTIPART_OVERHEAD = 16 * 1024 * 1024  # room for form fields around the file
# The files of one batch request kept in memory rather than staged on disk, at most (the
# client's batches hold at most 8 MiB of small files), and of all requests of a process;
# beyond either, files are staged on disk as they arrive.
BATCH_MEMORY = 8 * 1024 * 1024
PROCESS_BATCH_MEMORY = 64 * 1024 * 1024
_process_memory = MemoryBudget(PROCESS_BATCH_MEMORY)


def authenticate_request(request: Request) -> Principal:
    """Authenticate before reading any body byte (under the throttle, see server/auth.py)."""
    principal = authenticate(request)
    if principal is None:
        raise Unauthenticated(
            "authentication required: use __token__ as user and a token as password"
        )
    return principal


def _result_fields(result: PublishResult) -> dict[str, object]:
    return {
        "outcome": result.outcome,
        "project": result.project,
        "filename": result.filename,
        "version": result.version,
        "sha256": result.sha256,
        "size": result.size,
        "labels": result.labels,
        "warnings": result.warnings,
    }


def _response(request: Request, result: PublishResult) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(_result_fields(result))
    lines = [f"OK: {result.filename} {result.outcome}"] + [f"warning: {w}" for w in result.warnings]
    return PlainTextResponse("\n".join(lines) + "\n")


def _upload_request(parsed: ParsedUpload) -> UploadRequest:
    """The form of one file, checked for what every upload must carry."""
    action = parsed.get(":action")
    if action != "file_upload":
        raise InvalidRequest(f"unsupported :action {action!r}; this endpoint takes file_upload")
    if parsed.staged is None or not parsed.filename:
        raise InvalidRequest("the upload has no 'content' file field")
    for field in ("name", "version"):
        if not parsed.get(field):
            raise InvalidRequest(f"the upload has no {field!r} field")
    return UploadRequest(
        filename=parsed.filename,
        name=parsed.get("name") or "",
        version=parsed.get("version") or "",
        filetype=parsed.get("filetype"),
        sha256_digest=parsed.get("sha256_digest"),
        md5_digest=parsed.get("md5_digest"),
        blake2_256_digest=parsed.get("blake2_256_digest"),
        labels=tuple(parsed.fields.get("label", [])) or (DEFAULT_LABEL,),
    )


def _refuse_oversized(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"the upload is larger than this index's limit of {limit} bytes")


async def legacy_upload(request: Request) -> Response:
    services = app_state(request).services
    principal = await run_in_threadpool(authenticate_request, request)
    limit = services.settings.max_upload_size
    _refuse_oversized(request, limit)
    parsed = await parse_upload(
        request.headers.get("content-type"),
        request.stream(),
        lambda: StagingFile(services.settings.tmp_dir, limit),
    )
    try:
        upload = _upload_request(parsed)
    except BaseException:
        if parsed.staged is not None:
            parsed.staged.discard()
        raise
    assert parsed.staged is not None
    result = await run_in_threadpool(
        functools.partial(publish, upload_session=request.path_params.get("session")),
        services,
        principal,
        upload,
        parsed.staged,
    )
    return _response(request, result)


def _failure_fields(filename: str | None, error: NightwheelsError) -> dict[str, object]:
    return {
        "outcome": "failed",
        "filename": filename,
        "status": error.status,
        "error": error.code,
        "message": error.message,
    }


async def batch_upload(request: Request) -> Response:
    """Several files; answers ``{"results": [...]}``, one entry per file in request order.

    A file refused on its own (forbidden project, bad metadata, exists) is an entry with
    ``"outcome": "failed"`` and the status, code and message a single upload would get;
    the request as a whole fails only for what concerns all of it (authentication, a
    malformed body, the size limit).
    """
    services = app_state(request).services
    principal = await run_in_threadpool(authenticate_request, request)
    limit = services.settings.max_upload_size
    _refuse_oversized(request, limit)
    memory = MemoryBudget(BATCH_MEMORY, parent=_process_memory)
    try:
        return await _batch(request, services, principal, memory)
    finally:
        memory.close()


async def _batch(
    request: Request, services: Services, principal: Principal, memory: MemoryBudget
) -> Response:
    limit = services.settings.max_upload_size
    forms = await parse_batch(
        request.headers.get("content-type"),
        request.stream(),
        lambda: StagingFile(services.settings.tmp_dir, limit, memory),
        max_total=limit,
    )
    answers: list[dict[str, object] | None] = [None] * len(forms)
    uploads: list[tuple[UploadRequest, StagedFile]] = []
    positions: list[int] = []
    for position, form in enumerate(forms):
        try:
            uploads.append((_upload_request(form), form.staged))  # type: ignore[arg-type]
            positions.append(position)
        except NightwheelsError as exc:
            answers[position] = _failure_fields(form.filename, exc)
            if form.staged is not None:
                form.staged.discard()
    results = await run_in_threadpool(
        functools.partial(publish_many, upload_session=request.path_params.get("session")),
        services,
        principal,
        uploads,
    )
    for position, (upload, _), result in zip(positions, uploads, results, strict=True):
        answers[position] = (
            _failure_fields(upload.filename, result)
            if isinstance(result, NightwheelsError)
            else _result_fields(result)
        )
    return JSONResponse({"results": answers, "max_files": MAX_BATCH_FILES})


routes = [
    Route("/legacy/", legacy_upload, methods=["POST"]),
    Route("/legacy", legacy_upload, methods=["POST"]),
    Route("/legacy/batch/", batch_upload, methods=["POST"]),
    # Into an upload session (services/upload_sessions.py): listed once it is published.
    Route("/legacy/session/{session}/", legacy_upload, methods=["POST"]),
    Route("/legacy/session/{session}/batch/", batch_upload, methods=["POST"]),
]
