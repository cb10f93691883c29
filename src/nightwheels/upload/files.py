"""The distributions in a folder, checked before anything is sent.

The check is the server's own (``core.filenames`` + ``core.dists``): a wheel whose filename
version differs from its METADATA version (a static ``X.Y.0.dev0`` build renamed to a
nightly, say) is refused here, with the fix, rather than uploaded and then refused by
pip 24.1+ and uv on every install.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from nightwheels.core.dists import inspect_distribution
from nightwheels.core.filenames import parse_filename
from nightwheels.errors import Misconfigured, NightwheelsError


@dataclass(frozen=True)
class LocalDist:
    path: Path
    filename: str
    name: str  # as in METADATA
    version: str
    packagetype: str  # bdist_wheel | sdist
    pyversion: str
    metadata_version: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Rejected:
    path: Path
    reason: str


def find_distributions(folder: Path, *, sdist: bool = False) -> list[Path]:
    """Wheels (and sdists if asked) directly in ``folder``, sorted; refuse an empty folder."""
    if not folder.exists():
        raise Misconfigured(f"{folder} does not exist: nothing to upload")
    if folder.is_file():
        candidates = [folder]
    else:
        candidates = sorted(p for p in folder.iterdir() if p.is_file())
    suffixes = (".whl", ".tar.gz") if sdist else (".whl",)
    found = [p for p in candidates if p.name.endswith(suffixes)]
    if not found:
        what = "wheels or sdists" if sdist else "wheels (.whl)"
        hint = "" if sdist else "; sdists are uploaded only with --sdist"
        raise Misconfigured(
            f"no {what} in {folder}: refusing to run with nothing to upload, to prevent "
            f"accidental uploads (is the artifacts path right?){hint}"
        )
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def check_distribution(path: Path) -> LocalDist:
    """Parse and cross-check one file, raising a :class:`NightwheelsError` with the fix."""
    dist = parse_filename(path.name)
    meta = inspect_distribution(path, dist)
    if dist.packagetype == "bdist_wheel":
        pyversion = ".".join(sorted({tag.interpreter for tag in dist.tags}))
    else:
        pyversion = "source"
    return LocalDist(
        path=path,
        filename=path.name,
        name=meta.name,
        version=str(meta.version),
        packagetype=dist.packagetype,
        pyversion=pyversion,
        metadata_version=meta.metadata_version,
        size=path.stat().st_size,
        sha256=_sha256(path),
    )


def preflight(paths: list[Path]) -> tuple[list[LocalDist], list[Rejected]]:
    good: list[LocalDist] = []
    bad: list[Rejected] = []
    for path in paths:
        try:
            good.append(check_distribution(path))
        except NightwheelsError as exc:
            reason = exc.message
            if "pip 24.1+" in reason:
                reason += (
                    " (a nightly must be built with its nightly version, not renamed "
                    "afterwards: use `nightwheels build`, or SETUPTOOLS_SCM_PRETEND_VERSION / "
                    "CIBW_ENVIRONMENT with the version from `nightwheels version`)"
                )
            bad.append(Rejected(path, reason))
        except OSError as exc:
            bad.append(Rejected(path, f"cannot read: {exc.strerror or exc}"))
    return good, bad
