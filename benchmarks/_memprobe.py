"""Run the nightwheels CLI with a memory probe inside the process (no HTTP endpoint).

Used by ``benchmarks/soak.py --probe``: ``python benchmarks/_memprobe.py serve ...``.
Every ``NW_PROBE_INTERVAL`` seconds a JSON line goes to ``$NW_PROBE_DIR/probe.jsonl`` with
the RSS, what glibc malloc holds (in use / free inside its arenas / mmapped), SQLite's own
allocator total, the Python objects gc tracks and, with ``NW_PROBE_TRACEMALLOC=1``, the
bytes tracemalloc sees; then, for each file ``$NW_PROBE_DIR/want-<name>`` that has appeared,
a tracemalloc snapshot is written to ``$NW_PROBE_DIR/snap-<name>.pickle`` for the soak to
compare (a file, not a signal: uvicorn's event loop owns the main thread). Tracing starts at
the first such request, not at start-up (which it slows several-fold): growth after that
point is what the snapshots are for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

DIR = Path(os.environ["NW_PROBE_DIR"])
INTERVAL = float(os.environ.get("NW_PROBE_INTERVAL", "5"))
TRACE = os.environ.get("NW_PROBE_TRACEMALLOC") == "1"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes obtained with sbrk (main arena)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in mmapped chunks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free inside the arenas
            "keepcost",
        )
    ]


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_mallinfo2 = getattr(_libc, "mallinfo2", None)
if _mallinfo2 is not None:
    _mallinfo2.restype = _Mallinfo2
try:  # the libsqlite3 that the sqlite3 module is linked to (already loaded: same handle)
    _sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    _sqlite.sqlite3_memory_used.restype = ctypes.c_int64
except (OSError, AttributeError, TypeError):
    _sqlite = None


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def sample() -> dict[str, float]:
    mib = 1024 * 1024
    row: dict[str, float] = {
        "t": round(time.monotonic(), 1),
        "rss": _status("VmRSS") / mib,
        "threads": threading.active_count(),
        "gc_objects": len(gc.get_objects()),
    }
    if _mallinfo2 is not None:
        info = _mallinfo2()
        row.update(
            malloc_in_use=info.uordblks / mib,
            malloc_free=info.fordblks / mib,
            malloc_mmapped=info.hblkhd / mib,
        )
    if _sqlite is not None:
        row["sqlite"] = _sqlite.sqlite3_memory_used() / mib
    if tracemalloc.is_tracing():
        row["python_traced"] = tracemalloc.get_traced_memory()[0] / mib
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def _loop() -> None:
    with (DIR / "probe.jsonl").open("a") as out:
        while True:
            out.write(json.dumps(sample()) + "\n")
            out.flush()
            for want in sorted(DIR.glob("want-*")) if TRACE else ():
                name = want.name.removeprefix("want-")
                want.unlink()
                if not tracemalloc.is_tracing():
                    tracemalloc.start(12)
                tracemalloc.take_snapshot().dump(str(DIR / f"snap-{name}.tmp"))
                (DIR / f"snap-{name}.tmp").rename(DIR / f"snap-{name}.pickle")
            time.sleep(INTERVAL)


def main() -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_loop, name="memprobe", daemon=True).start()
    sys.argv = ["nightwheels", *sys.argv[1:]]
    runpy.run_module("nightwheels", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
