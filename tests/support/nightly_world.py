"""The sample world for nightly testing: upstreams with nightlies and stable releases, and
downstream projects whose tests use them (shared by the tests and the benchmark).

- ``comet`` (the upstream that breaks): stable 1.0 has ``greet``; nightlies dev20260101
  and dev20260102 keep it, dev20260103 and dev20260104 rename it to ``salute``.
- ``astro`` and ``bolide``: compatible nightlies. ``astro`` requires ``zeta``.
- ``zeta``: stable only, but the nightly index also hosts a hostile ``zeta`` nightly
  (dependency confusion): it must never be installed unless asked for.
- ``delta``: its only nightly is a Windows wheel (a platform with no nightly).
- ``epsilon``: its nightly requires a package that exists nowhere (cannot install).
- ``downstream``: depends on comet and astro, on bolide through a dependency group;
  ``downstream2`` on ``nova``; ``downstream3`` imports comet in its conftest.py.

Nightlies live on a live nightwheels; the stable releases (and pytest, rebuilt from this
environment) on a static PEP 503 index on another loopback port.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.clients import clean_env, run
from tests.support.server import LiveServer
from tests.support.static_index import StaticIndex, rewheel_closure
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel, metadata_text

TINY_BACKEND = '''
"""A PEP 517 backend with no requirements, so the stable index needs no build tools."""
import base64, hashlib, pathlib, tomllib, zipfile

def _meta():
    data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
    lines = ["Metadata-Version: 2.1", f"Name: {data['name']}", f"Version: {data['version']}"]
    lines += [f"Requires-Dist: {r}" for r in data.get("dependencies", [])]
    for extra, reqs in data.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    return data, "\\n".join(lines) + "\\n"

def _record(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    data, meta = _meta()
    name, version = data["name"], data["version"]
    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": meta.encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    for src in pathlib.Path("src").rglob("*.py"):
        files[src.relative_to("src").as_posix()] = src.read_bytes()
    record = [_record(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    filename = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / filename, "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return filename
'''

GOOD_COMET = 'def greet(name):\n    return f"hello {name}"\n'
BAD_COMET = 'def salute(name):\n    return f"hello {name}"\n'
COMET_NIGHTLIES = [
    ("2.0.0.dev20260101", GOOD_COMET),
    ("2.0.0.dev20260102", GOOD_COMET),
    ("2.0.0.dev20260103", BAD_COMET),
    ("2.0.0.dev20260104", BAD_COMET),
]


def _requires(name: str, version: str, *requires: str) -> str:
    return metadata_text(name, version, extra="".join(f"Requires-Dist: {r}\n" for r in requires))


def write_project(root: Path, name: str, pyproject: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (root / "_build").mkdir()
    (root / "_build" / "tinybackend.py").write_text(TINY_BACKEND)
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    return root


@dataclass
class World:
    server: LiveServer
    stable: StaticIndex
    downstream: Path
    downstream2: Path
    uv_cache: Path
    tmp: Path
    token: str  # an upload token (admin user "bot")

    def test(  # type: ignore[no-untyped-def]
        self, *args: str, project: Path | None = None, cwd: Path | None = None, **env: str
    ):
        command = [
            sys.executable,
            "-m",
            "nightwheels",
            "test",
            str(project or self.downstream),
            "--index",
            self.server.simple_url,
            "--stable-index",
            self.stable.url,
            *args,
        ]
        return run(
            command,
            env=clean_env(
                UV_CACHE_DIR=str(self.uv_cache), XDG_CACHE_HOME=str(self.tmp / "xdg"), **env
            ),
            check=False,
            cwd=cwd,
            timeout=600,
        )

    def close(self) -> None:
        self.stable.stop()
        self.server.stop()

    def nightly_files(self, name: str) -> list[dict]:  # type: ignore[type-arg]
        response = httpx.get(
            f"{self.server.simple_url}{name}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        return response.json()["files"]


def upload(server: LiveServer, token: str, wheel: Path) -> None:
    response = post_wheel(server, token, wheel)
    assert response.status_code == 200, response.text


def build_world(tmp: Path) -> World:
    server = LiveServer(data=tmp / "data")
    server.data.mkdir()
    server.start()
    stable = StaticIndex(tmp / "stable").start()
    try:
        server.create_user("bot", admin=True)
        token = server.token("bot", "comet", "astro", "bolide", "delta", "epsilon", "zeta", "nova")
        nightly = tmp / "nightly-wheels"
        for i, (version, source) in enumerate(COMET_NIGHTLIES):
            upload(
                server, token, make_wheel(nightly / str(i), "comet", version, module_source=source)
            )
        astro_source = "import zeta\nVALUE = zeta.VALUE\n"
        for wheel in [
            make_wheel(
                nightly,
                "astro",
                "1.1.0.dev0",
                metadata=_requires("astro", "1.1.0.dev0", "zeta>=1"),
                module_source=astro_source,
            ),
            make_wheel(nightly, "bolide", "1.1.0.dev0", module_source="VALUE = 2\n"),
            make_wheel(nightly, "delta", "2.0.0.dev0", tag="cp311-cp311-win_amd64"),
            make_wheel(
                nightly,
                "epsilon",
                "1.0.1.dev0",
                metadata=_requires("epsilon", "1.0.1.dev0", "does-not-exist>=1"),
            ),
            make_wheel(
                nightly,
                "zeta",
                "9.0.0.dev0",
                module_source="raise RuntimeError('zeta came from the nightly index')\n",
            ),
        ]:
            upload(server, token, wheel)
        wheels = tmp / "stable-wheels"
        stable.add(
            make_wheel(wheels, "comet", "1.0", module_source=GOOD_COMET),
            make_wheel(
                wheels,
                "astro",
                "1.0",
                metadata=_requires("astro", "1.0", "zeta>=1"),
                module_source=astro_source,
            ),
            make_wheel(wheels, "bolide", "1.0", module_source="VALUE = 2\n"),
            make_wheel(wheels, "delta", "1.0"),
            make_wheel(wheels, "epsilon", "1.0"),
            make_wheel(wheels, "zeta", "1.0", module_source="VALUE = 1\n"),
            make_wheel(wheels, "nova", "1.0", module_source=GOOD_COMET),
            *rewheel_closure(["pytest", "pytest-reportlog"], wheels),
        )
        downstream = write_project(
            tmp / "downstream",
            "downstream",
            """
            [build-system]
            requires = []
            build-backend = "tinybackend"
            backend-path = ["_build"]

            [project]
            name = "downstream"
            version = "0.1"
            dependencies = ["comet>=1", "astro"]

            [project.optional-dependencies]
            test = ["pytest"]
            platform = ["delta"]
            broken = ["epsilon"]

            [dependency-groups]
            test = ["bolide", {include-group = "base"}]
            base = ["pytest"]
            """,
            {
                "src/downstream/__init__.py": """
                import comet

                def welcome(name):
                    return comet.greet(name)
                """,
                "tests/test_api.py": """
                import astro
                import bolide
                import comet
                import pytest

                import downstream

                def test_welcome():
                    assert downstream.welcome("ada") == "hello ada"

                @pytest.mark.parametrize("name", ["a", "b", "c"])
                def test_greet(name):
                    assert comet.greet(name) == f"hello {name}"

                def test_astro():
                    assert astro.VALUE == 1

                def test_bolide():
                    assert bolide.VALUE == 2
                """,
                "tests/test_import.py": """
                from comet import greet

                def test_imported():
                    assert greet("x") == "hello x"
                """,
            },
        )
        downstream2 = write_project(
            tmp / "downstream2",
            "downstream2",
            """
            [build-system]
            requires = []
            build-backend = "tinybackend"
            backend-path = ["_build"]

            [project]
            name = "downstream2"
            version = "0.1"
            dependencies = ["nova"]

            [dependency-groups]
            test = ["pytest"]
            """,
            {
                "src/downstream2/__init__.py": "",
                "tests/test_nova.py": """
                import nova

                def test_greet():
                    assert nova.greet("x") == "hello x"
                """,
            },
        )
        write_project(
            tmp / "downstream3",
            "downstream3",
            """
            [build-system]
            requires = []
            build-backend = "tinybackend"
            backend-path = ["_build"]

            [project]
            name = "downstream3"
            version = "0.1"
            dependencies = ["comet", "pytest"]
            """,
            {
                "src/downstream3/__init__.py": "",
                "tests/conftest.py": "from comet import greet\n",
                "tests/test_it.py": "def test_it():\n    pass\n",
            },
        )
        return World(server, stable, downstream, downstream2, tmp / "uv-cache", tmp, token)
    except BaseException:
        stable.stop()
        server.stop()
        raise
