"""A wheel's zip framing: refused from its end record before parsing, and Warehouse's rules.

In-process and cheap: the 3,000,000-entry wheel is synthesised on read (every byte of
its central directory is there to be read, none is stored), and the test proves the
bound by the bytes read and the Python memory allocated, not by a clock.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest

from nightwheels.core import dists
from nightwheels.errors import InvalidDistribution
from tests.support.wheels import make_wheel, metadata_text

META = "demo-1.0.dev1.dist-info/METADATA"
META_BYTES = metadata_text("demo", "1.0.dev1").encode()


class ReadBudgetExceeded(Exception):
    pass


class SyntheticWheel(io.RawIOBase):
    """A real small wheel followed by ``extra`` more central-directory entries, made on read.

    ``budget`` caps the bytes that may be read: past it, reading raises (so a parser
    that walks the whole directory fails at once instead of for a minute).
    """

    def __init__(self, wheel: bytes, extra: int, budget: int, name_len: int = 11) -> None:
        self.name_len = name_len  # "pad/NNNNNNN" and padding
        self.ENTRY = 46 + name_len
        self.header = struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0,
            name_len, 0, 0, 0, 0, 0, 0,
        )  # fmt: skip
        cd_at = wheel.rfind(b"PK\x05\x06")
        (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4s4H2LH", wheel, cd_at)
        self.head = wheel[: cd_offset + cd_size]
        self.extra = extra
        entries = count + extra
        size = cd_size + extra * self.ENTRY
        end64_at = len(self.head) + extra * self.ENTRY
        self.tail = (
            struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size,
                        cd_offset)
            + struct.pack("<4sLQL", b"PK\x06\x07", 0, end64_at, 1)
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                          0xFFFFFFFF, 0)
        )  # fmt: skip
        self.size = end64_at + len(self.tail)
        self.pos = 0
        self.read_bytes = 0
        self.budget = budget

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _entry(self, i: int) -> bytes:
        return self.header + (b"pad/%07d" % i).ljust(self.name_len, b"x")

    def _byte_range(self, start: int, end: int) -> bytes:
        out = bytearray()
        pad_start = len(self.head)
        pad_end = pad_start + self.extra * self.ENTRY
        pos = start
        while pos < end:
            if pos < pad_start:
                chunk = self.head[pos : min(end, pad_start)]
            elif pos < pad_end:
                i, skip = divmod(pos - pad_start, self.ENTRY)
                chunk = self._entry(i)[skip : skip + end - pos]
            else:
                chunk = self.tail[pos - pad_end : end - pad_end]
            out += chunk
            pos += len(chunk)
        return bytes(out)

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        want = max(0, min(len(buffer), self.size - self.pos))
        self.read_bytes += want
        if self.read_bytes > self.budget:
            raise ReadBudgetExceeded(f"{self.read_bytes} bytes read")
        data = self._byte_range(self.pos, self.pos + want)
        buffer[:want] = data
        self.pos += want
        return want


def test_three_million_entries_are_refused_from_the_end_record(tmp_path: Path) -> None:
    """The issue's wheel (3,000,000 entries, 171 MB of central directory): refused having
    read the last 64 KiB and allocated almost nothing (zipfile: 1.7 GiB and 54 s)."""
    small = make_wheel(tmp_path, "demo", "1.0.dev1").read_bytes()
    wheel = SyntheticWheel(small, 3_000_000, budget=256 * 1024)
    assert wheel.size > 170_000_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDistribution, match="lists 3000004 members; the limit is"):
            dists.read_wheel_metadata(wheel)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wheel.read_bytes <= 70 * 1024
    assert peak < 1024 * 1024


def test_an_accepted_directory_is_streamed_not_held(tmp_path: Path) -> None:
    """A directory within the limits is read in 1 MiB chunks: memory is a digest per
    name, not the directory (here 15 MB of long names, read in less than half that)."""
    small = make_wheel(tmp_path, "demo", "1.0.dev1").read_bytes()
    entries = 10_000
    wheel = SyntheticWheel(small, entries, budget=1 << 30, name_len=1500)
    bound = 3 * 1024 * 1024 + 100 * entries  # the chunks, and a digest per name
    assert wheel.size > 2 * bound
    data = io.BytesIO(wheel.read())  # synthesised before measuring
    tracemalloc.start()
    try:
        assert dists.read_wheel_metadata(data) == META_BYTES
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < bound, peak


def _wheel_with(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(META, META_BYTES)
        for name, data in members.items():
            zf.writestr(name, data, compress_type=method)
    return buffer.getvalue()


def _refused(archive: bytes, message: str) -> None:
    with pytest.raises(InvalidDistribution, match=message):
        dists.read_wheel_metadata(io.BytesIO(archive))


def test_a_plain_wheel_and_a_stored_one_are_read(tmp_path: Path) -> None:
    assert dists.read_wheel_metadata(make_wheel(tmp_path, "demo", "1.0.dev1")) == META_BYTES
    stored = _wheel_with({"demo/__init__.py": b"x = 1\n"}, zipfile.ZIP_STORED)
    assert dists.read_wheel_metadata(io.BytesIO(stored)) == META_BYTES


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_compression_methods_are_refused(method: int) -> None:
    _refused(
        _wheel_with({"demo/data.bin": b"x" * 100}, method),
        f"uses compression method {method}; wheels may use only stored",
    )


def test_duplicate_member_names_are_refused() -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(META, META_BYTES)
            zf.writestr("demo/__init__.py", b"safe = True\n")
            zf.writestr("demo/__init__.py", b"import os  # the one an installer may pick\n")
    _refused(buffer.getvalue(), "'demo/__init__.py' appears twice")


def test_data_after_the_archive_is_refused() -> None:
    _refused(_wheel_with({}) + b"\x00" * 10 + b"more", "data after the end of the archive")


def test_data_before_the_archive_is_refused() -> None:
    _refused(b"#!/bin/sh\nexit 0\n" + _wheel_with({}), "data before the archive")


def test_zip64_extensible_data_is_refused() -> None:
    archive = _wheel_with({})
    eocd = archive.rfind(b"PK\x05\x06")
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4s4H2LH", archive, eocd)
    extensible = b"\x01\x00\x04\x00abcd"
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44 + len(extensible), 45, 45, 0, 0, count, count,
        cd_size, cd_offset,
    ) + extensible  # fmt: skip
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd, 1)
    body = archive[:eocd] + record + locator + archive[eocd:]
    _refused(body, "ZIP64 extensible data")


def test_a_large_member_that_inflates_more_than_fifty_times_is_refused() -> None:
    """65 MiB of zeros in 65 KiB: over 64 MiB, a ratio of 1000 (Warehouse's limit: 50)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(META, META_BYTES)
        with zf.open("demo/zeros.bin", "w") as out:
            chunk = bytes(1024 * 1024)
            for _ in range(65):
                out.write(chunk)
    _refused(buffer.getvalue(), "'demo/zeros.bin' inflates 68157440 bytes from .* more than 50")


def test_a_large_member_within_the_ratio_is_accepted() -> None:
    """The same size, stored: ratio 1, accepted (only the large and the inflating are refused)."""
    archive = _wheel_with({"demo/small.bin": bytes(1024 * 1024)})  # ratio ~1000, but 1 MiB
    assert dists.read_wheel_metadata(io.BytesIO(archive)) == META_BYTES


def test_metadata_with_a_bad_crc_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(META, META_BYTES)
    archive = bytearray(buffer.getvalue())
    at = archive.find(META_BYTES)
    archive[at] ^= 0x20  # "Metadata" -> "metadata": same size, another CRC
    _refused(bytes(archive), "fails its CRC check")


def test_encrypted_members_are_refused() -> None:
    archive = bytearray(_wheel_with({"demo/x.py": b"x"}))
    cd = archive.find(b"PK\x01\x02", archive.find(b"PK\x01\x02") + 4)
    struct.pack_into("<H", archive, cd + 8, 1)
    _refused(bytes(archive), "is encrypted")
