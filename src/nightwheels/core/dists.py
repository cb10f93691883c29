"""Reading and checking the core metadata inside an uploaded distribution.

Archives are untrusted: member names are checked for path traversal, and the
metadata member is read with a hard cap whatever its header declares (zip bombs).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nightwheels.core import wheelzip
from nightwheels.core.filenames import DistFilename
from nightwheels.errors import InvalidDistribution, InvalidMetadata

SUPPORTED_METADATA_VERSIONS = frozenset(
    {"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5"}
)
MAX_METADATA_SIZE = 4 * 1024 * 1024
MAX_MEMBERS = wheelzip.MAX_MEMBERS


@dataclass(frozen=True)
class DistMetadata:
    """What the index needs from a distribution's core metadata."""

    raw: bytes
    name: str
    version: Version
    metadata_version: str
    requires_python: str | None = None
    summary: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _check_member_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (name[:2].endswith(":")):
        raise InvalidDistribution(f"archive member {name!r} escapes the archive (path traversal)")


def _read_capped(stream, what: str) -> bytes:  # type: ignore[no-untyped-def]
    data = stream.read(MAX_METADATA_SIZE + 1)
    if len(data) > MAX_METADATA_SIZE:
        raise InvalidDistribution(f"{what} is larger than {MAX_METADATA_SIZE // 1024 // 1024} MiB")
    return data


def _is_metadata(name: str) -> bool:
    if not name.endswith("/METADATA"):
        return False
    parts = name.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"


def read_wheel_metadata(path: Path | BinaryIO) -> bytes:
    """The METADATA member, after the archive's framing is checked (see core/wheelzip.py)."""
    fp, size, owned = wheelzip.open_size(path)
    try:
        candidates, directory_offset = wheelzip.scan(fp, size, _is_metadata)
        if not candidates:
            raise InvalidDistribution("wheel has no .dist-info/METADATA file")
        if len(candidates) > 1:
            raise InvalidDistribution("wheel has more than one .dist-info/METADATA file")
        (member,) = candidates
        if member.file_size > MAX_METADATA_SIZE:
            raise InvalidDistribution(
                f"METADATA is larger than {MAX_METADATA_SIZE // 1024 // 1024} MiB"
            )
        return wheelzip.read_member(fp, member, MAX_METADATA_SIZE, directory_offset)
    except OSError as exc:
        raise InvalidDistribution(f"corrupt wheel archive: {exc}") from None
    finally:
        if owned:
            fp.close()


def read_sdist_metadata(path: Path | BinaryIO) -> bytes:
    try:
        source = {"name": path} if isinstance(path, Path) else {"fileobj": path}
        with tarfile.open(mode="r:gz", **source) as archive:  # type: ignore[call-overload]
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise InvalidDistribution(f"sdist has more than {MAX_MEMBERS} members")
                _check_member_name(member.name)
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                    stream = archive.extractfile(member)
                    if stream is None:
                        break
                    return _read_capped(stream, "PKG-INFO")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidDistribution(f"not a valid .tar.gz archive: {exc}") from None
    raise InvalidDistribution("sdist has no top-level PKG-INFO file")


def parse_metadata(raw: bytes) -> DistMetadata:
    """Check the fields the index relies on; other fields are kept as they are.

    Core metadata is UTF-8 (the spec says so, and installers read it so): other bytes
    would be served to every client as they are, so they are refused here.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMetadata(
            f"metadata is not valid UTF-8 (byte {exc.start}): core metadata must be UTF-8"
        ) from None
    try:
        fields, unparsed = parse_email(raw)
    except Exception as exc:  # the email parser raises several types on garbage
        raise InvalidMetadata(f"metadata cannot be parsed: {exc}") from None
    metadata_version = fields.get("metadata_version")
    if metadata_version is None:
        raise InvalidMetadata("metadata has no Metadata-Version field")
    if metadata_version not in SUPPORTED_METADATA_VERSIONS:
        raise InvalidMetadata(
            f"unsupported Metadata-Version {metadata_version!r}; supported: "
            + ", ".join(sorted(SUPPORTED_METADATA_VERSIONS))
        )
    name = fields.get("name")
    if not name:
        raise InvalidMetadata("metadata has no Name field")
    raw_version = fields.get("version")
    if not raw_version:
        raise InvalidMetadata("metadata has no Version field")
    try:
        version = Version(raw_version)
    except InvalidVersion:
        raise InvalidMetadata(f"metadata Version {raw_version!r} is not valid (PEP 440)") from None
    requires_python = fields.get("requires_python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise InvalidMetadata(
                f"Requires-Python {requires_python!r} is not a valid version specifier"
            ) from None
    for key in ("name", "version", "metadata-version", "requires-python"):
        if key in unparsed:
            raise InvalidMetadata(f"metadata field {key!r} is not valid")
    return DistMetadata(
        raw=raw,
        name=name,
        version=version,
        metadata_version=metadata_version,
        requires_python=requires_python,
        summary=fields.get("summary"),
    )


def inspect_distribution(path: Path | BinaryIO, dist: DistFilename) -> DistMetadata:
    """Read, parse and cross-check a distribution's metadata against its filename."""
    if dist.packagetype == "bdist_wheel":
        raw = read_wheel_metadata(path)
    else:
        raw = read_sdist_metadata(path)
    meta = parse_metadata(raw)
    if canonicalize_name(meta.name) != dist.name:
        raise InvalidMetadata(
            f"the filename says project {dist.name!r} but the metadata inside says {meta.name!r}"
        )
    if meta.version != dist.version:
        raise InvalidMetadata(
            f"the filename says version {dist.version} but the metadata inside says "
            f"{meta.version}; pip 24.1+ and uv refuse such wheels: rebuild so both agree"
        )
    return meta
