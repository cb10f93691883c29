"""Posting a test result to a nightwheels server's compatibility record."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from nightwheels import __version__
from nightwheels.errors import ProjectConfigError, TrackerError
from nightwheels.nightly_testing.results import Report


def result_payload(report: Report, repository: str | None = None) -> dict[str, Any]:
    culprits = report.bisect.culprits if report.bisect else []
    return {
        "downstream": report.project,
        "outcome": report.outcome,
        "python": report.python,
        "platform": report.platform,
        "tested_at": report.created_at.isoformat(),
        "repository": repository,
        "run_url": report.run_url,
        "commit": report.commit,
        "tests_passed": report.counts.passed,
        "tests_failed": report.counts.failed + report.counts.errors,
        "culprits": culprits,
        # What the upstream alerts key on: the failing tests, and each culprit's first bad build.
        "failures": sorted({f.nodeid for f in report.failures})[:200],
        "first_bad": [
            {
                "project": b.name,
                "version": b.first_bad.version,
                "filename": b.first_bad.filename,
                "sha256": b.first_bad.sha256,
            }
            for b in (report.bisect.builds if report.bisect else [])
            if b.first_bad is not None and b.first_bad.sha256
        ],
        "nightlies": [
            {
                "project": n.name,
                "version": n.version,
                "filename": n.filename,
                "sha256": n.sha256,
                "uploaded_at": n.upload_time.isoformat() if n.upload_time else None,
            }
            for n in report.nightlies
            if n.sha256
        ],
    }


def report_token(server: str, project: str, env: Mapping[str, str] = os.environ) -> str:
    """The token to report with: ``NIGHTWHEELS_TOKEN`` (one with the ``report`` permission),
    else, in a GitHub Actions job with ``id-token: write``, one minted by trusted publishing
    for a workflow registered as ``project``'s publisher."""
    from nightwheels.upload.credentials import trusted_publishing_token

    token = env.get("NIGHTWHEELS_TOKEN", "").strip()
    if token:
        return token
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        return trusted_publishing_token(server.rstrip("/"), env, project)
    raise ProjectConfigError(
        "no token for the nightwheels server: set NIGHTWHEELS_TOKEN to a token with the "
        "'report' permission, or give this GitHub Actions job `permissions: id-token: write` "
        "and register its workflow as the project's trusted publisher"
    )


def post_result(
    server: str,
    token: str,
    report: Report,
    repository: str | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Send ``report`` to ``server``; return the server's answer (what it recorded)."""
    if not token:
        raise ProjectConfigError(
            "no token for the nightwheels server: set NIGHTWHEELS_TOKEN to a token with "
            "the 'report' permission"
        )
    payload = result_payload(report, repository)
    if not payload["nightlies"]:
        raise ProjectConfigError("the report names no nightly with a sha256: nothing to post")
    url = server.rstrip("/") + "/api/v1/compat/results"
    own = client is None
    client = client or httpx.Client(timeout=30)
    try:
        response = client.post(
            url,
            json=payload,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"nightwheels/{__version__}",
            },
        )
    except httpx.HTTPError as exc:
        raise TrackerError(f"cannot reach {server}: {exc}") from None
    finally:
        if own:
            client.close()
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise TrackerError(f"{url} answered {response.status_code}: {message}")
    return dict(response.json())
