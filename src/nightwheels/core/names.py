"""Project names (PEP 503 normalisation, PEP 508 validity) and label names.

Names are validated by ``packaging`` itself (never a pattern of our own): a trailing newline,
the long s (U+017F), the dotless i (U+0131) or the Kelvin sign (U+212A) are not ASCII
letters and never name a project.
Labels use an ASCII ``fullmatch`` (a ``$`` with ``.match`` accepts a trailing newline).
"""

from __future__ import annotations

import re

from packaging.utils import InvalidName as PackagingInvalidName
from packaging.utils import canonicalize_name

from nightwheels.errors import InvalidName

__all__ = [
    "DEFAULT_LABEL",
    "MAX_LABEL_LENGTH",
    "MAX_NAME_LENGTH",
    "is_valid_name",
    "normalize_name",
    "validate_label",
]

MAX_NAME_LENGTH = 200
MAX_LABEL_LENGTH = 64
_VALID_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?", re.ASCII)

DEFAULT_LABEL = "main"


def is_valid_name(name: str) -> bool:
    if len(name) > MAX_NAME_LENGTH:
        return False
    try:
        canonicalize_name(name, validate=True)
    except PackagingInvalidName:
        return False
    return True


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalised form of a valid project name, else raise."""
    if len(name) <= MAX_NAME_LENGTH:
        try:
            return canonicalize_name(name, validate=True)
        except PackagingInvalidName:
            pass
    raise InvalidName(
        f"{name[:MAX_NAME_LENGTH]!r} is not a valid project name: use at most "
        f"{MAX_NAME_LENGTH} ASCII letters, digits, '.', '_' and '-', starting and ending with "
        "a letter or digit"
    )


def validate_label(label: str) -> str:
    if len(label) > MAX_LABEL_LENGTH or not _VALID_LABEL.fullmatch(label):
        raise InvalidName(
            f"{label[:MAX_LABEL_LENGTH]!r} is not a valid label: use 1-{MAX_LABEL_LENGTH} "
            "lowercase letters, digits, '.', '_' or '-'"
        )
    return label
