"""One documented way to set upload times (issue 19 item 8): ``nightwheels admin publish
--uploaded-at`` on the server machine, through the publish service's checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from nightwheels.cli.app import app
from tests.support.seed import open_services
from tests.support.wheels import make_wheel


def index(data: Path) -> Path:
    """A migrated, empty index (what nightwheels serve creates), as a copy would be."""
    open_services(data).close()
    return data


def run(data: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"NIGHTWHEELS_DATA": str(data)})
    return result.exit_code, result.stdout, result.stderr


def test_rehearse_retention_with_past_upload_times(tmp_path: Path) -> None:
    data = index(tmp_path / "copy")
    assert run(data, "admin", "user", "create", "ops")[0] == 0
    old = make_wheel(tmp_path / "a", "demo", "1.0.dev1")
    new = make_wheel(tmp_path / "b", "demo", "1.0.dev2")
    code, out, _ = run(data, "admin", "publish", str(old), "--owner", "ops", "--uploaded-at", "40d")
    assert code == 0 and out.startswith(f"uploaded {old.name} as uploaded at ")
    when = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    stamp = when.isoformat().replace("+00:00", "Z")
    code, out, _ = run(data, "admin", "publish", str(new), "--owner", "ops", "--uploaded-at", stamp)
    assert code == 0 and when.isoformat() in out
    # The stale report and a prune see those times (the newest version always stays).
    code, out, _ = run(data, "prune", "--dry-run", "--json")
    doc = json.loads(out)
    removed = [f["filename"] for p in doc["projects"] for f in p["files"] if f["remove"]]
    assert removed == [old.name] and doc["would_remove"] == 1
    stale = {d["project"]: d for d in json.loads(run(data, "stale", "--json")[1])}
    assert stale["demo"]["age_days"] >= 15


def test_upload_times_are_checked(tmp_path: Path) -> None:
    data = index(tmp_path / "copy")
    run(data, "admin", "user", "create", "ops")
    wheel = make_wheel(tmp_path / "a", "demo", "1.0.dev1")
    code, _, err = run(
        data, "admin", "publish", str(wheel), "--owner", "ops", "--uploaded-at", "2999-01-01T00:00Z"
    )
    assert code == 1 and "is in the future" in err
    code, _, err = run(
        data, "admin", "publish", str(wheel), "--owner", "ops", "--uploaded-at", "2026-11-01"
    )
    assert code == 1 and "needs a time zone" in err
    code, _, err = run(
        data, "admin", "publish", str(wheel), "--owner", "nobody", "--uploaded-at", "1d"
    )
    assert code == 1 and "no user named 'nobody'" in err
    # --days 0 stays refused (it would prune everything but each project's newest version
    # at once); the message names the way to rehearse instead.
    run(data, "admin", "publish", str(wheel), "--owner", "ops", "--uploaded-at", "1d")
    code, _, err = run(data, "retention", "set", "demo", "--days", "0")
    assert code == 1 and "admin publish --uploaded-at" in err
