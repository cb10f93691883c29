"""Trusted publishing from GitHub Actions: which OIDC claims a registered publisher accepts.

The token's signature, issuer, audience and lifetime are checked where the keys are (the
service); here are the claim rules, pure and testable:

- the repository and the workflow file must be the registered ones (names compared ASCII
  case-insensitively, as GitHub does; the workflow file name exactly);
- the repository owner id and repository id, once known, must match: a deleted account or
  repository re-created under the same name by someone else has new ids ("account
  resurrection"). They are given at registration or recorded on the first exchange;
- events that a fork can trigger (``pull_request``, ``pull_request_target``, any
  ``refs/pull/...`` ref) never publish;
- a publisher may name the one ref it publishes from (e.g. ``refs/heads/main``) and the
  GitHub environment its job must run in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightwheels.errors import InvalidRequest

__all__ = [
    "GITHUB_ISSUER",
    "GITHUB_JWKS_URL",
    "MAX_OIDC_LIFETIME",
    "REFUSED_EVENTS",
    "REQUIRED_CLAIMS",
    "PublisherSpec",
    "claims_mismatch",
    "event_refusal",
    "lifetime_refusal",
    "validate_publisher",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_JWKS_URL = f"{GITHUB_ISSUER}/.well-known/jwks"

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", re.ASCII)
_WORKFLOW = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.ya?ml", re.ASCII)
# Printable ASCII without "/" (GitHub environment names; non-ASCII would make the
# case-insensitive comparison ambiguous: the long s casefolds to "s").
_ENVIRONMENT = re.compile(r"[\x20-\x2e\x30-\x7e]{1,255}", re.ASCII)
_REF = re.compile(r"refs/(?:heads|tags)/[A-Za-z0-9._/+-]{1,200}", re.ASCII)
_ID = re.compile(r"[0-9]{1,20}", re.ASCII)

# Claims every exchanged token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "repository", "workflow_ref", "event_name")

# Events whose workflow runs can be started by someone without write access (a fork's pull
# request); GitHub gives `pull_request_target` the base repository's OIDC permissions.
REFUSED_EVENTS = frozenset({"pull_request", "pull_request_target"})

# The longest OIDC token accepted, as ``exp - iat`` in seconds. GitHub's ID tokens are
# valid 5 minutes after they are issued; 15 minutes leaves room for other issuers and
# clock skew, and keeps a token far shorter than the day its ``jti`` is remembered.
MAX_OIDC_LIFETIME = 15 * 60


@dataclass(frozen=True)
class PublisherSpec:
    repository: str  # owner/name
    workflow: str  # file name under .github/workflows/
    environment: str | None = None
    ref: str | None = None  # e.g. refs/heads/main; None = any ref
    repository_owner_id: str | None = None  # None until given or first exchanged
    repository_id: str | None = None


def _same(claim: object, registered: str) -> bool:
    """GitHub names compare case-insensitively, in ASCII only."""
    return isinstance(claim, str) and claim.isascii() and claim.lower() == registered.lower()


def _id(value: object, what: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not _ID.fullmatch(text):
        raise InvalidRequest(f"{value!r} is not a GitHub {what}: use the number, e.g. 123456")
    return text


def validate_publisher(
    repository: str,
    workflow: str,
    environment: str | None = None,
    *,
    ref: str | None = None,
    repository_owner_id: str | int | None = None,
    repository_id: str | int | None = None,
) -> PublisherSpec:
    repository = repository.strip()
    workflow = workflow.strip().removeprefix(".github/workflows/")
    if not _REPOSITORY.fullmatch(repository):
        raise InvalidRequest(f"{repository!r} is not a GitHub repository: use owner/name")
    if not _WORKFLOW.fullmatch(workflow):
        raise InvalidRequest(
            f"{workflow!r} is not a workflow file name: use the file name under "
            ".github/workflows/, e.g. nightly.yml"
        )
    environment = (environment or "").strip() or None
    if environment is not None and not _ENVIRONMENT.fullmatch(environment):
        raise InvalidRequest(
            f"{environment!r} is not a GitHub environment name (printable ASCII, no '/')"
        )
    ref = (ref or "").strip() or None
    if ref is not None and not _REF.fullmatch(ref):
        raise InvalidRequest(
            f"{ref!r} is not a full git ref: use refs/heads/BRANCH or refs/tags/TAG, "
            "e.g. refs/heads/main"
        )
    return PublisherSpec(
        repository,
        workflow,
        environment,
        ref,
        _id(repository_owner_id, "repository owner id"),
        _id(repository_id, "repository id"),
    )


def event_refusal(claims: Mapping[str, Any]) -> str | None:
    """Why no publisher may accept a token from this event, or ``None``."""
    event = claims.get("event_name")
    if not isinstance(event, str) or not event:
        return "the token carries no event_name claim"
    if event in REFUSED_EVENTS:
        return (
            f"workflows run for {event!r} events cannot publish (a fork can start them): "
            "publish from a schedule, a push, a release or workflow_dispatch"
        )
    ref = claims.get("ref")
    if isinstance(ref, str) and ref.startswith("refs/pull/"):
        return f"workflows run on a pull request's ref ({ref!r}) cannot publish"
    return None


def lifetime_refusal(claims: Mapping[str, Any], limit: int = MAX_OIDC_LIFETIME) -> str | None:
    """Why the token lives too long (``exp - iat`` over ``limit`` seconds), or ``None``."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)):
        return "the token's exp and iat claims are not numbers"
    if exp - iat > limit:
        return (
            f"the token is valid for {int(exp - iat)} s (exp - iat), more than the {limit} s "
            "this index accepts: GitHub's tokens live 5 minutes"
        )
    return None


def claims_mismatch(claims: Mapping[str, Any], publisher: PublisherSpec) -> str | None:
    """Why these OIDC claims do not come from ``publisher``, or ``None`` if they do.

    GitHub owner and repository names are case-insensitive, as are environment names;
    workflow file names are not.
    """
    repository = claims.get("repository")
    if not _same(repository, publisher.repository):
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
        or not _same(owner_repo, publisher.repository)
        or workflow_path != publisher.workflow
    ):
        return f"the token's workflow {path!r} is not the registered workflow {expected!r}"
    for claim, pinned in (
        ("repository_owner_id", publisher.repository_owner_id),
        ("repository_id", publisher.repository_id),
    ):
        value = claims.get(claim)
        if not isinstance(value, (str, int)) or not _ID.fullmatch(str(value)):
            return f"the token carries no {claim} claim"
        if pinned is not None and str(value) != pinned:
            return (
                f"the token's {claim} is {str(value)!r}, not the registered {pinned!r}: "
                f"{publisher.repository!r} is not the repository that was registered "
                "(deleted and re-created, or transferred?)"
            )
    if publisher.ref is not None and claims.get("ref") != publisher.ref:
        return f"the token is for ref {claims.get('ref')!r}, not the registered {publisher.ref!r}"
    if publisher.environment is not None:
        environment = claims.get("environment")
        if not _same(environment, publisher.environment):
            return (
                f"the job ran in environment {environment!r}, not the registered "
                f"{publisher.environment!r}"
            )
    return None
