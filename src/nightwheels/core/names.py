"""Project names (PEP 503 normalisation, PEP 508 validity) and label names."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name

from nightwheels.errors import InvalidName

# PEP 508 / core metadata "Name": ASCII letters, digits, and . _ - inside.
_VALID_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_VALID_LABEL = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
MAX_NAME_LENGTH = 200

DEFAULT_LABEL = "main"


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_VALID_NAME.match(name))


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalised form of a valid project name, else raise."""
    if not is_valid_name(name):
        raise InvalidName(
            f"{name!r} is not a valid project name: use ASCII letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit"
        )
    return canonicalize_name(name)


def validate_label(label: str) -> str:
    if not _VALID_LABEL.match(label):
        raise InvalidName(
            f"{label!r} is not a valid label: use 1-64 lowercase letters, digits, '.', '_' or '-'"
        )
    return label
