"""The layers call downward only (docs/architecture.md, DESIGN.md): a test per import.

Every ``nightwheels`` import in every module, at the top or inside a function, is checked
against the table below. A new package must be added to it, with the layers it may use.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nightwheels

ROOT = Path(nightwheels.__file__).parent

# The foundation every layer may use: the package version, the error types.
BASE = {"nightwheels", "errors"}
STORES = BASE | {"core", "config", "db", "storage"}
CLIENT_SIDE = BASE | {"core"}

# Package (or top-level module) -> what it may import besides itself.
MAY_IMPORT: dict[str, set[str]] = {
    "nightwheels": set(),
    "errors": set(),
    "core": BASE,
    "config": BASE | {"core"},
    "db": BASE | {"core"},
    "storage": BASE | {"core"},
    "services": STORES,
    # client-side tools: never the server side (db, storage, services, edges)
    "client": CLIENT_SIDE,
    "upload": CLIENT_SIDE,
    "building": CLIENT_SIDE,
    "trackers": CLIENT_SIDE | {"config"},
    # upload.http: the standard-library keep-alive client reads the index pages too
    "nightly_testing": CLIENT_SIDE | {"trackers", "upload"},
    "ci": CLIENT_SIDE | {"upload"},
    # edges: anything below; server and web are one HTTP edge (the app mounts the web UI)
    "server": STORES | {"services", "trackers", "web"},
    "web": STORES | {"services", "server"},
    "cli": STORES
    | {"services", "server", "client", "upload", "building", "trackers", "nightly_testing", "ci"},
    "__main__": {"cli"},
}

# core is pure: the standard library and packaging, nothing that does I/O for it.
CORE_THIRD_PARTY = {"packaging"}


def _unit(module: str) -> str:
    """``nightwheels.services.publish`` -> ``services``; ``nightwheels`` -> ``nightwheels``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "nightwheels":  # from nightwheels import errors, __version__
                found += [(node.lineno, f"nightwheels.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, name))
    return found


def _is_unit(name: str) -> bool:
    return (ROOT / name).is_dir() or (ROOT / f"{name}.py").exists()


def upward_imports() -> list[str]:
    problems = []
    for module, path in _modules():
        unit = _unit(module)
        allowed = MAY_IMPORT.get(unit)
        if allowed is None:
            problems.append(f"{module}: package {unit!r} is missing from MAY_IMPORT")
            continue
        for line, name in _imports(path, module):
            top = name.split(".")[0]
            if top == "nightwheels":
                target = _unit(name)
                if not _is_unit(target):  # nightwheels.__version__ and the like
                    target = "nightwheels"
                if target != unit and target not in allowed:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {unit} imports {name}")
            elif unit == "core" and top not in sys.stdlib_module_names | CORE_THIRD_PARTY:
                problems.append(f"{path.relative_to(ROOT)}:{line}: core imports {name}")
    return problems


def test_no_module_imports_upward() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The check itself can fail: a core module importing a service is caught."""
    fake = tmp_path / "nightwheels"
    (fake / "core").mkdir(parents=True)
    (fake / "services").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "services" / "__init__.py").write_text("")
    (fake / "core" / "bad.py").write_text(
        "import httpx\n\ndef f():\n    from nightwheels.services import publish\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    assert upward_imports() == [
        "core/bad.py:1: core imports httpx",
        "core/bad.py:4: core imports nightwheels.services",
    ]
