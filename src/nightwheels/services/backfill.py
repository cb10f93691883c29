"""Publishing local files with an upload time of the operator's choosing.

The one way to set upload times (besides ``nightwheels mirror``, which keeps another
index's PEP 700 times): through the publish service, with every check an upload gets, so
the result is an index like any other. Uses: building a copy of an index on which to
rehearse a retention policy ("what would a prune remove in 20 days?"), importing history,
tests. Only the server machine's operator can do it (``nightwheels admin publish``); no
HTTP edge accepts an upload time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from nightwheels.core.filenames import parse_filename
from nightwheels.errors import InvalidRequest, NightwheelsError
from nightwheels.services.auth import operator_principal
from nightwheels.services.context import Services
from nightwheels.services.publish import PublishOutcome, UploadRequest, publish_many
from nightwheels.storage.staging import write_bytes_staged

__all__ = ["publish_local"]


def publish_local(
    services: Services,
    owner: str,
    paths: Sequence[Path],
    *,
    uploaded_at: datetime,
    label: str = "main",
) -> list[PublishOutcome]:
    """Publish wheel files from disk as uploaded at ``uploaded_at`` (aware, not in the
    future), recorded as ``owner``'s uploads; one answer per file, in order."""
    if uploaded_at.tzinfo is None:
        raise InvalidRequest("an upload time needs a time zone (e.g. 2026-11-01T02:00:00Z)")
    if uploaded_at > datetime.now(uploaded_at.tzinfo):
        raise InvalidRequest(f"the upload time {uploaded_at.isoformat()} is in the future")
    principal = operator_principal(services.db, owner, "admin publish")
    uploads = []
    answers: list[PublishOutcome | None] = [None] * len(paths)
    places = []
    for index, path in enumerate(paths):
        try:
            dist = parse_filename(path.name)
            staged = write_bytes_staged(services.settings.tmp_dir, path.read_bytes())
        except NightwheelsError as exc:
            answers[index] = exc
            continue
        uploads.append(
            (
                UploadRequest(
                    filename=path.name,
                    name=dist.name,
                    version=str(dist.version),
                    sha256_digest=staged.sha256,
                    labels=(label,),
                    uploaded_at=uploaded_at,
                ),
                staged,
            )
        )
        places.append(index)
    for index, answer in zip(places, publish_many(services, principal, uploads), strict=True):
        answers[index] = answer
    return answers  # type: ignore[return-value]
