"""Sizes for people: one formatter, binary units (the index's limits are in MiB and GiB)."""

from __future__ import annotations

__all__ = ["format_size"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(size: float | None, missing: str = "-") -> str:
    """``999 B``, ``12.1 KiB``, ``2 GiB``: whole bytes, else one decimal (``.0`` dropped)."""
    if size is None:
        return missing
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"
