"""Streaming multipart/form-data parsing for uploads.

The ``content`` part goes straight to a :class:`StagingFile` (hashed as it arrives);
the other parts are small form fields, kept in memory under strict limits.

A legacy upload is one form with one ``content`` part. A batch is several such forms in
one body, one after the other: each file's fields, then its ``content`` part, which
closes that file's form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from nightwheels.errors import InvalidRequest, TooLarge
from nightwheels.storage.staging import StagedFile, StagingFile

MAX_FIELD_SIZE = 1024 * 1024  # one text field (descriptions can be long)
MAX_FIELDS_TOTAL = 8 * 1024 * 1024
MAX_FIELD_COUNT = 500  # parts of one file's form
MAX_BATCH_FILES = 200
FILE_FIELD = "content"


@dataclass
class ParsedUpload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    staged: StagedFile | None = None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


class _Collector:
    def __init__(  # type: ignore[no-untyped-def]
        self, staging_factory, max_files: int = 1, max_total: int | None = None
    ) -> None:
        self.result = ParsedUpload()
        self.done: list[ParsedUpload] = []  # closed forms (a batch)
        self._max_files = max_files
        self._max_total = max_total
        self._staged_total = 0
        self._factory = staging_factory
        self._staging: StagingFile | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._buffer = bytearray()
        self._total = 0
        self._count = 0

    # callbacks ------------------------------------------------------------------------
    def on_part_begin(self) -> None:
        self._headers = {}
        self._buffer = bytearray()
        self._name = None
        self._is_file = False
        self._count += 1
        if self._count > MAX_FIELD_COUNT:
            raise InvalidRequest(f"too many form fields (limit {MAX_FIELD_COUNT})")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise InvalidRequest("a multipart part has no Content-Disposition header")
        _, params = parse_options_header(disposition)
        raw_name = params.get(b"name")
        if raw_name is None:
            raise InvalidRequest("a multipart part has no field name")
        self._name = _decode(raw_name, "field name")
        if self._name == FILE_FIELD:
            if self._staging is not None or self.result.staged is not None:
                raise InvalidRequest("more than one 'content' file in the upload")
            if len(self.done) >= self._max_files:
                raise InvalidRequest(f"more than {self._max_files} files in one upload")
            raw_filename = params.get(b"filename")
            if raw_filename is None:
                raise InvalidRequest("the 'content' part has no filename")
            self.result.filename = _decode(raw_filename, "filename")
            self._is_file = True
            self._staging = self._factory()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self._staging is not None
            self._staged_total += end - start
            if self._max_total is not None and self._staged_total > self._max_total:
                raise TooLarge(
                    f"the files of this upload are larger than this index's limit of "
                    f"{self._max_total} bytes in one request: send fewer at a time"
                )
            self._staging.write(data[start:end])
            return
        size = end - start
        self._total += size
        if len(self._buffer) + size > MAX_FIELD_SIZE or self._total > MAX_FIELDS_TOTAL:
            raise TooLarge(f"form field {self._name!r} is too large")
        self._buffer += data[start:end]

    def on_part_end(self) -> None:
        if self._is_file:
            assert self._staging is not None
            self.result.staged = self._staging.finish()
            self._staging = None
            if self._max_files > 1:  # the file closes its form: the next fields are another's
                self.done.append(self.result)
                self.result = ParsedUpload()
                self._count = 0
        elif self._name is not None:
            value = _decode(bytes(self._buffer), f"field {self._name!r}")
            self.result.fields.setdefault(self._name, []).append(value)

    def discard(self) -> None:
        if self._staging is not None:
            self._staging.discard()
        for parsed in [*self.done, self.result]:
            if parsed.staged is not None:
                parsed.staged.discard()


def _decode(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not valid UTF-8") from None
    if "\x00" in text:
        raise InvalidRequest(f"{what} contains a NUL character")
    return text


def boundary_of(content_type: str | None) -> bytes:
    if not content_type:
        raise InvalidRequest("the upload must be multipart/form-data (no Content-Type)")
    media, params = parse_options_header(content_type)
    if media != b"multipart/form-data":
        raise InvalidRequest(
            f"the upload must be multipart/form-data, not {media.decode('latin-1')}"
        )
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise InvalidRequest("the multipart Content-Type has no valid boundary")
    return boundary


async def _parse(
    content_type: str | None, body: AsyncIterator[bytes], collector: _Collector
) -> None:
    """Feed ``body`` to ``collector``; on any error every staged byte is removed."""
    parser = MultipartParser(
        boundary_of(content_type),
        callbacks={  # type: ignore[arg-type]
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
        },
        max_header_count=16,
        max_header_size=8192,
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if collector._staging is not None:
            raise InvalidRequest("the upload body ended in the middle of the file")
    except MultipartParseError as exc:
        collector.discard()
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    except BaseException:
        collector.discard()
        raise


async def parse_upload(
    content_type: str | None, body: AsyncIterator[bytes], staging_factory
) -> ParsedUpload:  # type: ignore[no-untyped-def]
    """One legacy upload form."""
    collector = _Collector(staging_factory)
    await _parse(content_type, body, collector)
    return collector.result


async def parse_batch(
    content_type: str | None,
    body: AsyncIterator[bytes],
    staging_factory,  # type: ignore[no-untyped-def]
    max_total: int,
) -> list[ParsedUpload]:
    """The forms of a batch, in order; fields after the last file are refused."""
    collector = _Collector(staging_factory, max_files=MAX_BATCH_FILES, max_total=max_total)
    await _parse(content_type, body, collector)
    if collector.result.fields or not collector.done:
        collector.discard()
        if not collector.done:
            raise InvalidRequest("the upload has no 'content' file field")
        raise InvalidRequest("form fields after the last file: each file's fields come before it")
    return collector.done
