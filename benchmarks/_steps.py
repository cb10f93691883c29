"""Run ``python -m nightwheels ARGS`` and log when each of its steps ran (for a breakdown).

    python benchmarks/_steps.py LOG -m nightwheels test ...

Each child process (uv, pytest, git) and each HTTP request is written to LOG as one JSON
line: ``{"kind", "what", "start", "end"}``, in seconds of ``time.monotonic()`` (the same
clock in every process on the machine, so the caller can place them against its own).
Used by ``benchmarks/nightly_testing.py`` for runs it does not time.
"""

from __future__ import annotations

import atexit
import functools
import json
import runpy
import subprocess
import sys
import time
from typing import Any

LOG = open(sys.argv[1], "w", encoding="utf-8")  # noqa: SIM115 - open until the process ends
atexit.register(LOG.close)


def _wrap(owner: Any, name: str, kind: str, what: Any) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            line = {"kind": kind, "what": what(args), "start": start, "end": time.monotonic()}
            LOG.write(json.dumps(line) + "\n")
            LOG.flush()

    setattr(owner, name, timed)


def _command(args: tuple[Any, ...]) -> str:
    argv = [str(a) for a in args[0]]
    name = argv[0].rsplit("/", 1)[-1]
    if name == "uv":
        return " ".join(["uv", *argv[1:3]]) if argv[1] == "pip" else f"uv {argv[1]}"
    if "pytest" in argv:
        return "pytest"
    return name if name != "git" else f"git {argv[-2]}"


_wrap(subprocess, "run", "process", _command)
from nightwheels.upload import http  # noqa: E402 - the index reader's client, once wrapped

_wrap(http.Client, "request", "http", lambda args: f"{args[1]} {args[2]}")
sys.argv = ["nightwheels", *sys.argv[4:]]  # after LOG, -m, nightwheels
runpy.run_module("nightwheels", run_name="__main__", alter_sys=True)
