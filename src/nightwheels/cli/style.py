"""One look for every command's help. Typer renders it; two of its defaults read oddly:

- a flag takes no value, yet typer shows a ``<bool>`` type after it (``--help <bool>``);
- an argument shows as ``{project}`` or ``[project_dir]`` in usage lines, where git, pip
  and click write ``PROJECT`` and ``[PROJECT_DIR]``.

:func:`apply` adjusts both on typer's parameter classes, once, before any help is shown.
If a typer release renames what it adjusts, help keeps typer's defaults (and
``tests/test_cli_help.py`` says so).
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply"]

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    from typer import core

    option = getattr(core, "TyperOption", None)
    argument = getattr(core, "TyperArgument", None)
    if option is not None and hasattr(option, "display_type_rich"):
        shown = option.display_type_rich

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) and self.metavar is None:
                return None  # a flag takes no value: nothing to show after it
            return shown(self, ctx)  # type: ignore[no-any-return]

        option.display_type_rich = display_type_rich
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def placeholder(self: Any) -> str:
            return str(self.metavar or self.name.upper())

        def usage_name(self: Any) -> str:
            name = placeholder(self)
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        argument.display_name_raw = property(placeholder)
        argument._usage_display_name = usage_name
