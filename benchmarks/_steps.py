"""Run ``python -m nightwheels ARGS`` and log when each of its steps ran (for a breakdown).

    python benchmarks/_steps.py LOG -m nightwheels test ...

Each child process (uv, pytest, git), from its start to its exit, and each HTTP request of
the index reader is written to LOG as one JSON line: ``{"kind", "what", "start", "end"}``,
in seconds of ``time.monotonic()`` (one clock for every process on the machine, so the
caller can place them against its own). Used by ``benchmarks/nightly_testing.py`` for runs
it does not time.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import runpy
import subprocess
import sys
import threading
import time
from typing import Any

LOG = open(sys.argv[1], "w", encoding="utf-8")  # noqa: SIM115 - open until the process ends
atexit.register(LOG.close)
_LOCK = threading.Lock()


def _log(kind: str, what: str, start: float, end: float) -> None:
    line = {"kind": kind, "what": what, "start": start, "end": end}
    with _LOCK:
        LOG.write(json.dumps(line) + "\n")
        LOG.flush()


def _command(argv: list[str]) -> str:
    name = argv[0].rsplit("/", 1)[-1]
    if name == "uv":
        return " ".join(["uv", *argv[1:3]]) if argv[1] == "pip" else f"uv {argv[1]}"
    if "pytest" in argv:
        return "pytest"
    return name if name != "git" else f"git {argv[-2]}"


_popen_init = subprocess.Popen.__init__


def _popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    """Log each child from its start to its exit (seen with WNOWAIT: the caller still reaps it)."""
    start = time.monotonic()
    _popen_init(self, args, *rest, **kwargs)
    what = _command([str(a) for a in args])

    def watch() -> None:
        with contextlib.suppress(ChildProcessError):  # reaped already: it ended about now
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        _log("process", what, start, time.monotonic())

    threading.Thread(target=watch, daemon=True).start()


subprocess.Popen.__init__ = _popen  # type: ignore[method-assign]


def _wrap_client(module: Any) -> None:
    request = module.Client.request

    def timed(self: Any, method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return request(self, method, target, *args, **kwargs)
        finally:
            _log("http", f"{method} {target}", start, time.monotonic())

    module.Client.request = timed


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps the index reader's HTTP client once the run imports it (not before: the
    start-up measured is the run's own)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "nightwheels.upload.http":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            run_module = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                run_module(module)
                _wrap_client(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _AfterImport())
sys.argv = ["nightwheels", *sys.argv[4:]]  # after LOG, -m, nightwheels
runpy.run_module("nightwheels", run_name="__main__", alter_sys=True)
