"""Trusted publishing from GitHub Actions: which OIDC claims a registered publisher accepts.

The token's signature, issuer, audience and lifetime are checked where the keys are (the
service); here are the claim rules, pure and testable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightwheels.errors import InvalidRequest

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_JWKS_URL = f"{GITHUB_ISSUER}/.well-known/jwks"

_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_WORKFLOW = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.ya?ml$")
_ENVIRONMENT = re.compile(r"^[^\x00-\x1f/]{1,255}$")

# Claims every exchanged token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "repository", "workflow_ref")


@dataclass(frozen=True)
class PublisherSpec:
    repository: str  # owner/name
    workflow: str  # file name under .github/workflows/
    environment: str | None = None


def validate_publisher(
    repository: str, workflow: str, environment: str | None = None
) -> PublisherSpec:
    repository = repository.strip()
    workflow = workflow.strip()
    if workflow.startswith(".github/workflows/"):
        workflow = workflow.removeprefix(".github/workflows/")
    if not _REPOSITORY.match(repository):
        raise InvalidRequest(f"{repository!r} is not a GitHub repository: use owner/name")
    if not _WORKFLOW.match(workflow):
        raise InvalidRequest(
            f"{workflow!r} is not a workflow file name: use the file name under "
            ".github/workflows/, e.g. nightly.yml"
        )
    environment = (environment or "").strip() or None
    if environment is not None and not _ENVIRONMENT.match(environment):
        raise InvalidRequest(f"{environment!r} is not a valid GitHub environment name")
    return PublisherSpec(repository, workflow, environment)


def claims_mismatch(claims: Mapping[str, Any], publisher: PublisherSpec) -> str | None:
    """Why these OIDC claims do not come from ``publisher``, or ``None`` if they do.

    GitHub owner and repository names are case-insensitive, as are environment names;
    workflow file names are not.
    """
    repository = claims.get("repository")
    if not isinstance(repository, str) or repository.casefold() != publisher.repository.casefold():
        return f"the token is for repository {repository!r}, not {publisher.repository!r}"
    workflow_ref = claims.get("workflow_ref")
    if not isinstance(workflow_ref, str):
        return "the token carries no workflow_ref claim"
    path, sep, ref = workflow_ref.partition("@")
    expected = f"{publisher.repository}/.github/workflows/{publisher.workflow}"
    owner_repo, _, workflow_path = path.partition("/.github/workflows/")
    if (
        not sep
        or not ref
        or owner_repo.casefold() != publisher.repository.casefold()
        or workflow_path != publisher.workflow
    ):
        return f"the token's workflow {path!r} is not the registered workflow {expected!r}"
    if publisher.environment is not None:
        environment = claims.get("environment")
        if not isinstance(environment, str) or (
            environment.casefold() != publisher.environment.casefold()
        ):
            return (
                f"the job ran in environment {environment!r}, not the registered "
                f"{publisher.environment!r}"
            )
    return None
