"""Words in messages: a count with its noun in the right number."""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "file")`` is ``1 file``; ``counted(2, "file")`` is ``2 files``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
