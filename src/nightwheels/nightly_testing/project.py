"""A downstream project's dependencies, read from its ``pyproject.toml``.

``[project] dependencies``, the chosen ``[project.optional-dependencies]`` extras and the
chosen PEP 735 ``[dependency-groups]`` (with ``{include-group = ...}`` expanded).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from nightwheels.errors import ProjectConfigError


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    version: str | None
    dependencies: tuple[Requirement, ...]
    optional: Mapping[NormalizedName, tuple[Requirement, ...]]
    groups: Mapping[NormalizedName, tuple[Requirement, ...]]
    dynamic: frozenset[str] = field(default_factory=frozenset)

    def requirements(
        self, extras: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> list[Requirement]:
        """The direct requirements of the project with ``extras`` and ``groups``."""
        reqs = list(self.dependencies)
        for extra in extras:
            key = canonicalize_name(extra)
            if key not in self.optional:
                if "optional-dependencies" in self.dynamic:
                    continue
                known = ", ".join(sorted(self.optional)) or "none"
                raise ProjectConfigError(f"{self.name} has no extra {extra!r} (extras: {known})")
            reqs += self.optional[key]
        for group in groups:
            key = canonicalize_name(group)
            if key not in self.groups:
                known = ", ".join(sorted(self.groups)) or "none"
                raise ProjectConfigError(
                    f"{self.name} has no dependency group {group!r} (groups: {known})"
                )
            reqs += self.groups[key]
        return reqs


def _requirements(values: Any, where: str) -> tuple[Requirement, ...]:
    if not isinstance(values, list):
        raise ProjectConfigError(f"{where} must be a list of requirement strings")
    out = []
    for value in values:
        if not isinstance(value, str):
            raise ProjectConfigError(f"{where} must be a list of requirement strings")
        try:
            out.append(Requirement(value))
        except InvalidRequirement as exc:
            raise ProjectConfigError(
                f"{where}: {value!r} is not a valid requirement: {exc}"
            ) from None
    return tuple(out)


def _expand_groups(raw: Any) -> dict[NormalizedName, tuple[Requirement, ...]]:
    """PEP 735: names are normalised; ``{include-group = "x"}`` entries expand recursively."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProjectConfigError("[dependency-groups] must be a table")
    groups: dict[NormalizedName, list[Any]] = {}
    for name, items in raw.items():
        key = canonicalize_name(name)
        if key in groups:
            raise ProjectConfigError(f"dependency group {name!r} is defined twice (normalised)")
        if not isinstance(items, list):
            raise ProjectConfigError(f"dependency group {name!r} must be a list")
        groups[key] = items

    resolved: dict[NormalizedName, tuple[Requirement, ...]] = {}

    def resolve(key: NormalizedName, stack: tuple[NormalizedName, ...]) -> tuple[Requirement, ...]:
        if key in resolved:
            return resolved[key]
        if key in stack:
            cycle = " -> ".join([*stack, key])
            raise ProjectConfigError(f"dependency groups include each other in a cycle: {cycle}")
        if key not in groups:
            raise ProjectConfigError(f"dependency group {stack[-1]!r} includes unknown {key!r}")
        out: list[Requirement] = []
        for item in groups[key]:
            if isinstance(item, str):
                out += _requirements([item], f"dependency group {key!r}")
            elif isinstance(item, dict) and set(item) == {"include-group"}:
                out += resolve(canonicalize_name(str(item["include-group"])), (*stack, key))
            else:
                raise ProjectConfigError(
                    f"dependency group {key!r}: {item!r} is neither a requirement "
                    "nor {include-group = ...}"
                )
        resolved[key] = tuple(out)
        return resolved[key]

    for key in groups:
        resolve(key, ())
    return resolved


def read_project(root: Path) -> Project:
    """Read ``root/pyproject.toml``; raise :class:`ProjectConfigError` saying what is wrong."""
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectConfigError(f"{root} has no pyproject.toml: is it a Python project?") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectConfigError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("project")
    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise ProjectConfigError(f"{path} has no [project] table with a name")
    dynamic = frozenset(table.get("dynamic", []))
    optional_raw = table.get("optional-dependencies", {})
    if not isinstance(optional_raw, dict):
        raise ProjectConfigError("[project.optional-dependencies] must be a table")
    version = table.get("version")
    return Project(
        root=root.resolve(),
        name=table["name"],
        version=version if isinstance(version, str) else None,
        dependencies=_requirements(table.get("dependencies", []), "[project] dependencies"),
        optional={
            canonicalize_name(k): _requirements(v, f"extra {k!r}") for k, v in optional_raw.items()
        },
        groups=_expand_groups(data.get("dependency-groups")),
        dynamic=dynamic,
    )
