"""The framing of a wheel's zip archive, checked from its end before anything is parsed.

A zip is read from its end-of-central-directory record, which gives the number of
entries and the size of the central directory. Both are checked against fixed limits
before the directory is read, so an archive that lists millions of entries costs one
read of its last 64 KiB (``zipfile`` parses the whole directory into objects first:
3,000,000 entries took 1.7 GiB and 54 s). The directory is then read in a bounded
stream, entry by entry, keeping only what the checks need.

The framing rules are those a real index applies (Warehouse): stored or deflate
members only, no encrypted members, no two members with one name, nothing before or
after the archive, no ZIP64 extensible data, and no large member that inflates more
than 50 times. Only the METADATA member is ever decompressed, with a hard cap.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import BinaryIO

from nightwheels.errors import InvalidDistribution

__all__ = [
    "MAX_DIRECTORY_SIZE",
    "MAX_MEMBERS",
    "MAX_RATIO",
    "RATIO_FROM_SIZE",
    "Member",
    "open_size",
    "read_member",
    "scan",
]

MAX_MEMBERS = 200_000
MAX_DIRECTORY_SIZE = 64 * 1024 * 1024
MAX_RATIO = 50  # Warehouse: a member past 64 MiB may not inflate more than this
RATIO_FROM_SIZE = 64 * 1024 * 1024
STORED, DEFLATED = 0, 8

_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes
_EOCD_SIG = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_LOCATOR_SIG = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_EOCD64_SIG = b"PK\x06\x06"
_EOCD64_FIXED = 44  # the record's size field when it has no extensible data
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # 30 bytes
_LOCAL_SIG = b"PK\x03\x04"
_MAX_COMMENT = 0xFFFF
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_ZIP64_EXTRA = 0x0001
_READ_BUFFER = 1024 * 1024  # the directory is read in chunks of this size


def _refuse(reason: str) -> InvalidDistribution:
    return InvalidDistribution(f"invalid wheel archive: {reason}")


@dataclass(frozen=True)
class Member:
    """What the central directory says about one member (kept for the ones asked for)."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    file_size: int
    header_offset: int


@dataclass(frozen=True)
class _End:
    entries: int
    directory_size: int
    directory_offset: int
    directory_end: int  # where the directory must end: the ZIP64 record or the EOCD


def _read_at(fp: BinaryIO, offset: int, size: int) -> bytes:
    fp.seek(offset)
    data = fp.read(size)
    if len(data) != size:
        raise _refuse("it is truncated")
    return data


def _find_end(fp: BinaryIO, file_size: int) -> _End:
    """The end record, read from the last 64 KiB: the only read before the limits."""
    tail_size = min(file_size, _EOCD.size + _MAX_COMMENT)
    tail = _read_at(fp, file_size - tail_size, tail_size)
    at = tail.rfind(_EOCD_SIG)
    found_any = at != -1
    while at != -1:
        fields = _EOCD.unpack_from(tail, at)
        if at + _EOCD.size + fields[-1] == tail_size:
            break
        at = tail.rfind(_EOCD_SIG, 0, at)
    else:
        if found_any:
            raise _refuse("there is data after the end of the archive")
        raise InvalidDistribution("not a valid zip archive: no end-of-central-directory record")
    eocd_pos = file_size - tail_size + at
    _, disk, cd_disk, entries_here, entries, cd_size, cd_offset, _ = fields
    if disk or cd_disk or entries_here != entries:
        raise _refuse("archives split over several disks are not supported")
    end = _End(entries, cd_size, cd_offset, eocd_pos)
    locator_pos = eocd_pos - _LOCATOR.size
    if locator_pos >= 0 and _read_at(fp, locator_pos, 4) == _LOCATOR_SIG:
        end = _zip64_end(fp, locator_pos)
    elif 0xFFFF in (entries, entries_here) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _refuse("its end record points to a ZIP64 record that is missing")
    if end.entries > MAX_MEMBERS:
        raise _refuse(f"it lists {end.entries} members; the limit is {MAX_MEMBERS}")
    if end.directory_size > MAX_DIRECTORY_SIZE:
        raise _refuse(
            f"its central directory is {end.directory_size} bytes; the limit is "
            f"{MAX_DIRECTORY_SIZE // 1024 // 1024} MiB"
        )
    if end.directory_size < end.entries * _CENTRAL.size:
        raise _refuse("its central directory is smaller than the members it lists")
    if end.directory_offset + end.directory_size != end.directory_end:
        raise _refuse("there is data before the archive or inside its central directory")
    return end


def _zip64_end(fp: BinaryIO, locator_pos: int) -> _End:
    _, disk, record_pos, disks = _LOCATOR.unpack(_read_at(fp, locator_pos, _LOCATOR.size))
    if disk or disks > 1:
        raise _refuse("archives split over several disks are not supported")
    if record_pos + _EOCD64.size > locator_pos:
        raise _refuse("its ZIP64 end record is out of place")
    fields = _EOCD64.unpack(_read_at(fp, record_pos, _EOCD64.size))
    sig, record_size, _, _, disk, cd_disk, entries_here, entries, cd_size, cd_offset = fields
    if sig != _EOCD64_SIG:
        raise _refuse("its ZIP64 end record is missing")
    if record_size != _EOCD64_FIXED:
        raise _refuse("it carries ZIP64 extensible data, which wheels never need")
    if record_pos + _EOCD64.size != locator_pos:
        raise _refuse("there is data between its ZIP64 end record and its locator")
    if disk or cd_disk or entries_here != entries:
        raise _refuse("archives split over several disks are not supported")
    return _End(entries, cd_size, cd_offset, record_pos)


def _zip64_sizes(
    extra: bytes, file_size: int, compressed_size: int, offset: int
) -> tuple[int, int, int]:
    """Replace the 32-bit fields marked 0xFFFFFFFF by the ZIP64 extra field's values."""
    at = 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + size]
        if len(body) != size:
            raise _refuse("a member's extra field is truncated")
        if kind == _ZIP64_EXTRA:
            values = [file_size, compressed_size, offset]
            pos = 0
            for i, value in enumerate(values):
                if value == 0xFFFFFFFF:
                    if pos + 8 > size:
                        raise _refuse("a member's ZIP64 field is truncated")
                    (values[i],) = struct.unpack_from("<Q", body, pos)
                    pos += 8
            return values[0], values[1], values[2]
        at += 4 + size
    return file_size, compressed_size, offset


def _check_name(name: str) -> None:
    if not name or "\x00" in name:
        raise _refuse("a member has an empty name or a NUL in its name")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (name[1:2] == ":"):
        raise InvalidDistribution(f"archive member {name!r} escapes the archive (path traversal)")


def scan(fp: BinaryIO, file_size: int, wanted: Callable[[str], bool]) -> tuple[list[Member], int]:
    """Check the archive's framing; return the members for which ``wanted(name)`` is true
    (their size limits are the caller's) and where the central directory starts.

    Memory: a 16-byte digest per member name (duplicates), and the wanted members.
    """
    end = _find_end(fp, file_size)
    fp.seek(end.directory_offset)
    directory = _Chunks(fp, end.directory_size)
    seen: set[bytes] = set()
    found: list[Member] = []
    for _ in range(end.entries):
        buf, at = directory.take(_CENTRAL.size)
        (sig, _, _, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len,
         comment_len, _, _, _, offset) = _CENTRAL.unpack_from(buf, at)  # fmt: skip
        if sig != _CENTRAL_SIG:
            raise _refuse("its central directory is corrupt")
        buf, at = directory.take(name_len + extra_len + comment_len)
        raw_name = bytes(buf[at : at + name_len])
        try:
            name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
        except UnicodeDecodeError:
            raise _refuse("a member name is not valid UTF-8") from None
        _check_name(name)
        if flags & _FLAG_ENCRYPTED:
            raise _refuse(f"member {name!r} is encrypted")
        if method not in (STORED, DEFLATED):
            raise _refuse(
                f"member {name!r} uses compression method {method}; wheels may use "
                "only stored (0) or deflate (8)"
            )
        if extra_len:
            extra = buf[at + name_len : at + name_len + extra_len]
            usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
        digest = blake2b(name.encode(), digest_size=16).digest()
        if digest in seen:
            raise _refuse(f"member {name!r} appears twice")
        seen.add(digest)
        if offset >= end.directory_offset:
            raise _refuse(f"member {name!r} points outside the archive's data")
        if wanted(name):
            found.append(Member(name, method, flags, crc, csize, usize, offset))
            continue  # the caller applies its own, tighter, size limit to these
        if usize > RATIO_FROM_SIZE and usize > MAX_RATIO * csize:
            raise _refuse(
                f"member {name!r} inflates {usize} bytes from {csize}: more than "
                f"{MAX_RATIO} times, for a member over {RATIO_FROM_SIZE // 1024 // 1024} MiB"
            )
    if directory.left():
        raise _refuse("its central directory is larger than the members it lists")
    return found, end.directory_offset


class _Chunks:
    """The central directory, read from ``fp`` in chunks of at most 1 MiB."""

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp = fp
        self._unread = size
        self._buf = bytearray()
        self._at = 0

    def take(self, size: int) -> tuple[bytearray, int]:
        """A buffer holding the next ``size`` bytes, and where they start in it."""
        if self._at + size > len(self._buf):
            del self._buf[: self._at]
            self._at = 0
            want = min(self._unread, max(_READ_BUFFER, size - len(self._buf)))
            more = self._fp.read(want)
            self._unread -= len(more)
            self._buf += more
            del more
            if len(self._buf) < size:
                raise _refuse("its central directory is shorter than the members it lists")
        at = self._at
        self._at += size
        return self._buf, at

    def left(self) -> bool:
        return self._unread > 0 or self._at < len(self._buf)


def read_member(fp: BinaryIO, member: Member, limit: int, directory_offset: int) -> bytes:
    """Inflate ``member``, at most ``limit`` bytes, checking its local header and CRC."""
    header = _read_at(fp, member.header_offset, _LOCAL.size)
    sig, _, _, flags, method, _, _, _, _, _, name_len, extra_len = _LOCAL.unpack(header)
    if sig != _LOCAL_SIG:
        raise _refuse(f"member {member.name!r} has no local header")
    local_name = _read_at(fp, member.header_offset + _LOCAL.size, name_len)
    if local_name != member.name.encode("utf-8" if flags & _FLAG_UTF8 else "cp437"):
        raise _refuse(f"member {member.name!r} has another name in its local header")
    if method != member.method:
        raise _refuse(f"member {member.name!r} has another compression in its local header")
    start = member.header_offset + _LOCAL.size + name_len + extra_len
    if start + member.compressed_size > directory_offset:
        raise _refuse(f"member {member.name!r} runs into the central directory")
    if member.compressed_size > limit + 64 * 1024:  # deflate never grows data this much
        raise _refuse(f"member {member.name!r} is larger than {limit} bytes")
    fp.seek(start)
    raw = fp.read(member.compressed_size)
    if len(raw) != member.compressed_size:
        raise _refuse("it is truncated")
    if member.method == STORED:
        data = raw[: limit + 1]
    else:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise _refuse(f"member {member.name!r} is corrupt ({exc})") from None
    if len(data) > limit:
        raise _refuse(f"member {member.name!r} is larger than {limit} bytes")
    if len(data) != member.file_size:
        raise InvalidDistribution(
            f"corrupt wheel archive: {member.name} declares {member.file_size} bytes "
            f"but holds {len(data)}"
        )
    if zlib.crc32(data) != member.crc:
        raise _refuse(f"member {member.name!r} fails its CRC check")
    return data


def open_size(source: Path | BinaryIO) -> tuple[BinaryIO, int, bool]:
    """A seekable binary stream over ``source``, its size, and whether we opened it."""
    if isinstance(source, Path):
        fp: BinaryIO = open(source, "rb")  # noqa: SIM115 (closed by the caller)
        owned = True
    else:
        fp, owned = source, False
    size = fp.seek(0, io.SEEK_END)
    return fp, size, owned
