"""One CLI (issue 16.8): every command's help reads alike, and every option says what it is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from nightwheels.cli.app import app
from nightwheels.cli.upload import build_parser
from nightwheels.core.text import counted
from tests.support.cli import nightwheels

ROOT = Path(__file__).resolve().parent.parent


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


COMMANDS = [path for path, _ in commands()]


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"nightwheels {' '.join(path)} {param.opts[0] if param.opts else param.name}"
        for path, command in commands()
        for param in command.params
        if not getattr(param, "hidden", False) and not (getattr(param, "help", None) or "").strip()
    ]
    missing += [
        f"nightwheels upload {action.option_strings or action.dest}"
        for action in build_parser()._actions
        if not action.help
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "nightwheels")
def test_help_reads_like_every_other_command(path: tuple[str, ...]) -> None:
    out = nightwheels(*path, "--help", COLUMNS="200")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage  # PROJECT, not {project}
    assert re.search(r"\[[a-z_]+\]", usage) is None, usage  # [VERSION], not [version]
    assert "<bool>" not in text  # a flag takes no value
    assert "``" not in text  # reStructuredText is not for a terminal
    assert "index URL (env NIGHTWHEELS_SERVER)" not in text  # "server URL", as everywhere


def test_upload_help_has_the_layout_of_the_others() -> None:
    shown = nightwheels("upload", "--help", COLUMNS="200")
    assert shown.returncode == 0
    assert (
        "╭─ Options" in shown.stdout
        and "Usage: nightwheels upload [OPTIONS] [PATH]" in shown.stdout
    )
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert option in shown.stdout, option
    assert "server URL (env NIGHTWHEELS_SERVER)" in shown.stdout
    # The console command (argparse's own path, no Typer app) shows the same help.
    real = nightwheels("upload", "--help", real=True, COLUMNS="200")
    assert real.returncode == 0 and "╭─ Options" in real.stdout


def test_a_missing_server_is_the_same_usage_error_everywhere(tmp_path: Path) -> None:
    for args in (("whoami",), ("upload", str(tmp_path)), ("ci", "init")):
        out = nightwheels(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out)
        assert "NIGHTWHEELS_SERVER" in out.stderr and len(out.stderr.splitlines()) == 1


def test_counts_agree_with_their_nouns() -> None:
    assert counted(1, "file") == "1 file" and counted(2, "file") == "2 files"
    assert counted(0, "version") == "0 versions"
    assert counted(1, "newest version") == "1 newest version"


def test_the_readme_uses_only_listed_commands() -> None:
    hidden = {" ".join(path) for path, command in commands() if getattr(command, "hidden", False)}
    readme = (ROOT / "README.md").read_text()
    used = {
        " ".join(m.split()[:2]) for m in re.findall(r"nightwheels ((?:[a-z-]+ ?){1,2})", readme)
    }
    assert not {u for u in used if u in hidden or u.split()[0] in hidden}, hidden
