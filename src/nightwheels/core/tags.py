"""Wheel tags in words: ``cp313-cp313-manylinux_2_17_x86_64`` -> "Linux x86-64, CPython 3.13".

Pure rules, no I/O. A wheel's tag set (possibly compressed, ``py2.py3-none-any`` or
``...manylinux_2_17_x86_64.manylinux2014_x86_64``) is described by the platforms and the
Pythons it runs on; the minimum OS/libc version goes into ``detail``. A tag that these rules
do not know is shown as it is, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from packaging.tags import Tag, parse_tag

ARCHITECTURES = {
    "x86_64": "x86-64",
    "amd64": "x86-64",
    "aarch64": "ARM64",
    "arm64": "ARM64",
    "arm64_v8a": "ARM64",
    "i686": "x86",
    "i386": "x86",
    "x86": "x86",
    "ppc64le": "POWER little-endian",
    "ppc64": "POWER",
    "s390x": "IBM Z",
    "armv7l": "ARMv7",
    "armeabi_v7a": "ARMv7",
    "armv6l": "ARMv6",
    "riscv64": "RISC-V 64",
    "loongarch64": "LoongArch64",
    "wasm32": "WebAssembly",
}
MACOS_ARCHITECTURES = {
    "arm64": "Apple silicon",
    "x86_64": "Intel",
    "universal2": "universal (Apple silicon and Intel)",
    "intel": "Intel",
    "universal": "universal",
}
INTERPRETERS = {
    "cp": "CPython",
    "pp": "PyPy",
    "py": "Python",
    "graalpy": "GraalPy",
    "ip": "IronPython",
    "jy": "Jython",
}
# Legacy manylinux names and the glibc they stand for (PEP 513, 571, 599).
LEGACY_MANYLINUX = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}

_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_LEGACY = re.compile(r"^(manylinux1|manylinux2010|manylinux2014)_(.+)$")
_MUSL = re.compile(r"^musllinux_(\d+)_(\d+)_(.+)$")
_LINUX = re.compile(r"^linux_(.+)$")
_MACOS = re.compile(r"^macosx_(\d+)_(\d+)_(.+)$")
_EMSCRIPTEN = re.compile(r"^emscripten_(\d+)_(\d+)_(\d+)_(wasm32)$")
_PYODIDE = re.compile(r"^pyodide_(\d+)_(\d+)_(wasm32)$")
_IOS = re.compile(r"^ios_(\d+)_(\d+)_(.+?)_(iphoneos|iphonesimulator)$")
_ANDROID = re.compile(r"^android_(\d+)_(.+)$")
_INTERPRETER = re.compile(r"^([a-z]+?)(\d*)$")
_CPYTHON_ABI = re.compile(r"^cp(\d)(\d+)([a-z]*)$")

# Display order of platform families on a project page.
FAMILY_ORDER = {"Linux": 0, "macOS": 1, "Windows": 2, "Any": 9}


@dataclass(frozen=True)
class Platform:
    family: str  # Linux, macOS, Windows, Any, ... (or the raw tag when unknown)
    text: str  # "Linux x86-64"
    detail: str | None = None  # "glibc 2.17 or later"


@dataclass(frozen=True)
class TagDescription:
    platform: str  # "Linux x86-64" (several joined with " / ")
    python: str  # "CPython 3.13"
    detail: str  # minimum OS or libc, may be empty
    sort_key: tuple[object, ...]

    def __str__(self) -> str:
        return f"{self.platform}, {self.python}"


def _arch(raw: str) -> str:
    return ARCHITECTURES.get(raw, raw)


def describe_platform(platform: str) -> Platform:
    """One platform tag in words."""
    if platform == "any":
        return Platform("Any", "Any platform")
    if m := _MANYLINUX.match(platform):
        return Platform(
            "Linux", f"Linux {_arch(m[3])}", f"glibc {m[1]}.{m[2]} or later (manylinux)"
        )
    if m := _LEGACY.match(platform):
        glibc = LEGACY_MANYLINUX[m[1]]
        return Platform("Linux", f"Linux {_arch(m[2])}", f"glibc {glibc} or later (manylinux)")
    if m := _MUSL.match(platform):
        return Platform("Linux", f"Linux {_arch(m[3])} (musl)", f"musl {m[1]}.{m[2]} or later")
    if m := _LINUX.match(platform):
        return Platform("Linux", f"Linux {_arch(m[1])}", "built for one Linux distribution")
    if m := _MACOS.match(platform):
        arch = MACOS_ARCHITECTURES.get(m[3], _arch(m[3]))
        return Platform("macOS", f"macOS {arch}", f"macOS {m[1]}.{m[2]} or later")
    if platform.startswith("win"):
        arch = {"win32": "x86", "win_amd64": "x86-64", "win_arm64": "ARM64"}.get(platform)
        if arch:
            return Platform("Windows", f"Windows {arch}")
    if m := _EMSCRIPTEN.match(platform):
        return Platform("WebAssembly", "WebAssembly", f"Emscripten {m[1]}.{m[2]}.{m[3]}")
    if m := _PYODIDE.match(platform):
        return Platform("WebAssembly", "WebAssembly", f"Pyodide {m[1]}.{m[2]}")
    if m := _IOS.match(platform):
        where = "iOS" if m[4] == "iphoneos" else "iOS simulator"
        return Platform("iOS", f"{where} {_arch(m[3])}", f"iOS {m[1]}.{m[2]} or later")
    if m := _ANDROID.match(platform):
        return Platform("Android", f"Android {_arch(m[2])}", f"Android API {m[1]} or later")
    return Platform(platform, platform)


def _version(digits: str) -> str:
    return digits if len(digits) <= 1 else f"{digits[0]}.{digits[1:]}"


def describe_python(interpreter: str, abi: str) -> str:
    """The Python a (interpreter, abi) pair runs on, e.g. ``CPython 3.13 free-threaded``."""
    if abi == "abi3" and (m := _INTERPRETER.match(interpreter)) and m[1] == "cp" and m[2]:
        return f"CPython {_version(m[2])} or later (stable ABI)"
    m = _INTERPRETER.match(interpreter)
    if m is None or m[1] not in INTERPRETERS:
        return f"{interpreter}-{abi}"
    name = INTERPRETERS[m[1]]
    text = f"{name} {_version(m[2])}" if m[2] else name
    if (cm := _CPYTHON_ABI.match(abi)) and "t" in cm[3]:
        text += " free-threaded"
    if (cm := _CPYTHON_ABI.match(abi)) and "d" in cm[3]:
        text += " debug"
    return text


def _python_key(tag: Tag) -> tuple[int, ...]:
    m = _INTERPRETER.match(tag.interpreter)
    digits = m[2] if m else ""
    major = int(digits[0]) if digits else 0
    minor = int(digits[1:]) if len(digits) > 1 else -1
    return (major, minor, 1 if tag.abi.endswith("t") else 0)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def describe_tags(tags: frozenset[Tag] | set[Tag]) -> TagDescription:
    """Describe a wheel's tag set (all tags of one filename)."""
    ordered = sorted(tags, key=lambda t: (_python_key(t), t.platform, t.abi))
    platforms = [describe_platform(t.platform) for t in ordered]
    platform_text = " / ".join(_unique([p.text for p in platforms]))
    python_text = " / ".join(_unique([describe_python(t.interpreter, t.abi) for t in ordered]))
    detail = "; ".join(_unique([p.detail for p in platforms if p.detail]))
    family = platforms[0].family if platforms else ""
    key = (
        FAMILY_ORDER.get(family, 5),
        family,
        platform_text,
        tuple(-x for x in _python_key(ordered[0])) if ordered else (),
    )
    return TagDescription(platform_text, python_text, detail, key)


@lru_cache(maxsize=4096)
def describe_tag(tag: str) -> TagDescription:
    """Describe a (possibly compressed) tag string such as ``cp313-cp313-win_amd64``.

    Cached: an index has few distinct tag strings, and a project page describes hundreds of files.
    """
    return describe_tags(parse_tag(tag))


SOURCE = TagDescription("Source", "any Python (builds on install)", "", (10, "", "", ()))


def describe_filename(filename: str) -> TagDescription:
    """Describe a distribution by its filename: a wheel's tags, or "Source" for an sdist."""
    if not filename.endswith(".whl"):
        return SOURCE
    parts = filename[:-4].split("-")  # name-version[-build]-python-abi-platform (PEP 427)
    if len(parts) not in (5, 6) or not all(parts[-3:]):
        return TagDescription("unknown", filename, "", (11, "", "", ()))
    return describe_tag("-".join(parts[-3:]))
