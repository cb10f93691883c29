"""Fresh, isolated test environments built with uv.

Every run gets a new virtual environment: a reused one lets an installer keep an
"already satisfied" ``X.Y.0.dev0`` from an earlier nightly with the same version string.

Nightlies are passed to uv as direct URL requirements with their sha256
(``name @ https://.../file.whl#sha256=...``), and the nightly index is *not* given to uv
as an index at all. uv therefore cannot take any other package from it, whatever the
index hosts (dependency confusion), and installs exactly the file that was chosen and
recorded, refusing it if its bytes do not match the hash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nightwheels.errors import InstallFailed, NightwheelsError, ProjectConfigError

# Light at import: ``nightwheels test`` starts the first ``uv venv`` (:func:`start_first_venv`)
# before it imports the rest (packaging, the index reader), which is imported meanwhile.
if TYPE_CHECKING:
    from packaging.utils import NormalizedName

    from nightwheels.nightly_testing.selection import Target

# uv settings that could add an index, change which versions are eligible or redirect
# sources; the environment must come only from the URLs on our command line.
_UV_KEEP = (
    "UV_CACHE_DIR",
    "UV_NO_CACHE",
    "UV_HTTP_TIMEOUT",
    "UV_HTTP_RETRIES",
    "UV_NATIVE_TLS",
    "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS",
    "UV_CONCURRENT_INSTALLS",
    "UV_PYTHON_INSTALL_DIR",
    "UV_PYTHON_DOWNLOADS",
    "UV_PYTHON_PREFERENCE",
    "UV_LINK_MODE",
    "UV_OFFLINE",
)
# Secrets the code under test never needs (the reporter runs in a separate step).
SECRET_VARIABLES = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_PAT",
    "NIGHTWHEELS_TOKEN",
    "NIGHTWHEELS_SERVER_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)

_PROBE = r"""
import json, platform, sys
sys.path.insert(0, sys.argv[1])
from packaging import markers, tags
print(json.dumps({
    "python_version": platform.python_version(),
    "tags": [str(t) for t in tags.sys_tags()],
    "markers": markers.default_environment(),
}))
"""

_INSTALLED = r"""
import json, importlib.metadata as md
out = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    out[name] = {"version": d.version, "direct_url": d.read_text("direct_url.json")}
print(json.dumps(out))
"""


def find_uv(explicit: str | None = None) -> str:
    """The uv binary: ``explicit``, the ``uv`` Python package's, or ``uv`` on PATH."""
    if explicit:
        if shutil.which(explicit) is None:
            raise ProjectConfigError(f"uv not found at {explicit!r}")
        return explicit
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise ProjectConfigError(
            "uv is needed to build test environments: pip install uv, "
            "or put uv on PATH (or pass --uv)"
        )
    return found


def uv_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for uv: no configuration files, no inherited index settings."""
    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items() if not k.startswith(("UV_", "PIP_"))}
    env.update({k: base[k] for k in _UV_KEEP if k in base})
    for secret in SECRET_VARIABLES:
        env.pop(secret, None)
    env["UV_NO_CONFIG"] = "1"
    env.pop("VIRTUAL_ENV", None)
    env.pop("CONDA_PREFIX", None)
    return env


def test_environment(venv: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the tests run in: the venv first on PATH, no tokens."""
    env = dict(os.environ if base is None else base)
    for secret in SECRET_VARIABLES:
        env.pop(secret, None)
    for key in ("PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX"):
        env.pop(key, None)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(bin_dir(venv)) + os.pathsep + env.get("PATH", "")
    return env


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin")


def _python_in(venv: Path) -> Path:
    return bin_dir(venv) / ("python.exe" if sys.platform == "win32" else "python")


@dataclass(frozen=True)
class Installed:
    version: str
    url: str | None  # PEP 610 direct_url.json "url", if it was installed from a URL


def _tail(text: str, lines: int = 40) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class Uv:
    """Runs uv for one ``nightwheels test`` invocation."""

    def __init__(self, binary: str, stable_index: str, workdir: Path) -> None:
        self.binary = binary
        self.stable_index = stable_index
        self.workdir = workdir
        self.env = uv_environment()

    def _run(self, args: Sequence[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.binary, *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.workdir,
            )
        except subprocess.TimeoutExpired:
            raise InstallFailed(f"uv {args[0]} did not finish in {timeout:.0f} s") from None
        except OSError as exc:
            raise ProjectConfigError(f"cannot run uv ({self.binary}): {exc}") from None

    def create_venv(self, path: Path, python: str | None) -> Path:
        return self.start_venv(path, python).wait()

    def start_venv(self, path: Path, python: str | None) -> PendingVenv:
        """``uv venv`` started: :meth:`PendingVenv.wait` gives the environment's interpreter."""
        args = ["venv", "--quiet", "--no-config", *(["--python", python] if python else [])]
        try:
            process = subprocess.Popen(
                [self.binary, *args, str(path)],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.workdir,
            )
        except OSError as exc:
            raise ProjectConfigError(f"cannot run uv ({self.binary}): {exc}") from None
        return PendingVenv(self.binary, self.workdir, path, process)

    def install(
        self,
        python: Path,
        requirements: Sequence[str],
        refresh: Sequence[str] = (),
        rebuild: Sequence[str] = (),
    ) -> None:
        """Install ``requirements`` (pip requirement lines) into the environment of ``python``."""
        req_file = python.parent.parent / "nightwheels-requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        args = [
            "pip",
            "install",
            "--no-config",
            "--python",
            str(python),
            "--default-index",
            self.stable_index,
            "--index-strategy",
            "first-index",
            "--no-sources",
            "-r",
            str(req_file),
        ]
        for name in refresh:  # nightlies: never trust a cached copy of a reused URL
            args += ["--refresh-package", name]
        for name in rebuild:  # the project under test: build it from its current sources
            args += ["--reinstall-package", name]
        result = self._run(args)
        if result.returncode != 0:
            raise InstallFailed(
                f"uv could not install the test environment:\n{_tail(result.stderr)}"
            )

    def compile_names(self, python: Path, requirements: Sequence[str]) -> set[NormalizedName]:
        """Every package the requirements resolve to against the stable index."""
        req_file = self.workdir / "nightwheels-resolve.in"
        req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        result = self._run(
            [
                "pip",
                "compile",
                "--no-config",
                "--quiet",
                "--no-header",
                "--no-annotate",
                "--default-index",
                self.stable_index,
                "--no-sources",
                "--python",
                str(python),
                str(req_file),
            ]
        )
        if result.returncode != 0:
            raise InstallFailed(f"uv could not resolve the dependencies:\n{_tail(result.stderr)}")
        from packaging.utils import canonicalize_name

        names = set()
        for line in result.stdout.splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(canonicalize_name(line.split("@")[0].split("==")[0].split("[")[0]))
        return names


class PendingVenv:
    """A ``uv venv`` running in the background."""

    TIMEOUT = 1800

    def __init__(self, binary: str, workdir: Path, path: Path, process: subprocess.Popen[str]):
        self.binary = binary
        self.workdir = workdir
        self.path = path
        self._process = process

    def wait(self) -> Path:
        """The new environment's interpreter, once uv has made it."""
        try:
            _out, err = self._process.communicate(timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired:
            self.discard()
            raise InstallFailed(f"uv venv did not finish in {self.TIMEOUT} s") from None
        if self._process.returncode != 0:
            raise InstallFailed(f"uv could not create the environment:\n{_tail(err)}")
        return _python_in(self.path)

    def discard(self) -> None:
        """Stop uv if it still runs (the run ended before it used the environment)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()


def start_first_venv(
    uv: str | None, python: str | None, workdir: Path | None
) -> PendingVenv | None:
    """The first environment of ``nightwheels test``, started before the rest is imported.

    ``workdir/env-1`` (a new temporary directory without ``workdir``), made by the uv that
    :func:`find_uv` names. None when it cannot be started here: the run then creates it
    itself, and reports any error where it always did.
    """
    try:
        binary = find_uv(uv)
        base = workdir or Path(tempfile.mkdtemp(prefix="nightwheels-test-"))
        base.mkdir(parents=True, exist_ok=True)
        path = base / "env-1"
        if path.exists():
            shutil.rmtree(path)
        return Uv(binary, "", base).start_venv(path, python or sys.executable)
    except (NightwheelsError, OSError):
        return None


def current_target() -> Target:
    """The wheel tags and marker values of the interpreter running nightwheels."""
    import platform

    from packaging import markers, tags

    from nightwheels.nightly_testing.selection import Target

    return Target(
        platform.python_version(),
        tuple(tags.sys_tags()),
        dict(markers.default_environment()),
    )


def probe(python: Path, workdir: Path) -> Target:
    """Ask an interpreter for its wheel tags and marker values (with our ``packaging``)."""
    import packaging
    from packaging.tags import Tag

    from nightwheels.nightly_testing.selection import Target

    shim = workdir / "probe"
    if not (shim / "packaging").is_dir():
        shutil.copytree(
            Path(packaging.__file__).parent,
            shim / "packaging",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    result = subprocess.run(
        [str(python), "-I", "-c", _PROBE, str(shim)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise InstallFailed(f"cannot inspect the interpreter {python}:\n{_tail(result.stderr)}")
    data = json.loads(result.stdout)
    tags: list[Tag] = []
    for text in data["tags"]:
        interpreter, abi, platform = text.split("-")
        tags.append(Tag(interpreter, abi, platform))
    return Target(data["python_version"], tuple(tags), data["markers"])


def _site_packages(python: Path) -> Path | None:
    """The site-packages of the virtual environment ``python`` belongs to, if it is one."""
    venv = python.parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        return None
    found = [p for p in (venv / "Lib" / "site-packages",) if p.is_dir()]
    found += [p for p in venv.glob("lib/python3*/site-packages") if p.is_dir()]
    return found[0] if len(found) == 1 else None


def _read_site(site: Path) -> dict[NormalizedName, Installed]:
    """Name, version and PEP 610 URL of each ``*.dist-info`` in a site-packages.

    The METADATA headers are read with the standard library's email parser, as
    importlib.metadata reads them, without importing it (5% of ``nightwheels test``'s
    start-up, for two headers).
    """
    from email.parser import HeaderParser

    from packaging.utils import canonicalize_name

    out: dict[NormalizedName, Installed] = {}
    for info in sorted(site.glob("*.dist-info")):
        try:
            headers = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        name, version = headers["Name"], headers["Version"]
        if not name or not version:
            continue
        url = None
        try:
            url = json.loads((info / "direct_url.json").read_text(encoding="utf-8")).get("url")
        except (OSError, ValueError, AttributeError):
            url = None
        out.setdefault(canonicalize_name(name), Installed(version, url))
    return out


def installed(python: Path) -> dict[NormalizedName, Installed]:
    """Name -> version and PEP 610 URL of every distribution in an environment.

    A virtual environment's site-packages is read here (no interpreter to start: it
    costs a second per run on a busy CI machine); any other interpreter is asked.
    """
    from packaging.utils import canonicalize_name

    site = _site_packages(python)
    if site is not None:
        return _read_site(site)
    result = subprocess.run(
        [str(python), "-I", "-c", _INSTALLED], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise InstallFailed(f"cannot list the installed packages:\n{_tail(result.stderr)}")
    out: dict[NormalizedName, Installed] = {}
    for name, info in json.loads(result.stdout).items():
        url = None
        if info.get("direct_url"):
            try:
                url = json.loads(info["direct_url"]).get("url")
            except ValueError:
                url = None
        out[canonicalize_name(name)] = Installed(info["version"], url)
    return out
