"""The pure access rules (core/): reviewer impartiality, representation, OIDC claims, scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nightwheels.core.access import (
    approval_conflict,
    representation_warnings,
    same_organisation,
)
from nightwheels.core.permissions import scope_within
from nightwheels.core.tokens import expiry_warning, validate_token_name
from nightwheels.core.trusted_publishing import (
    PublisherSpec,
    claims_mismatch,
    validate_publisher,
)
from nightwheels.errors import InvalidRequest

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _conflict(**kw: object) -> str | None:
    base: dict[str, object] = {
        "reviewer": "root",
        "reviewer_organisation": "NumFOCUS",
        "reviewer_role": None,
        "requester": "alice",
        "requester_organisation": "Quansight",
        "project": "demo",
    }
    base.update(kw)
    return approval_conflict(**base)  # type: ignore[arg-type]


def test_approval_conflicts() -> None:
    assert _conflict() is None
    assert "own request" in (_conflict(reviewer="alice") or "")
    assert "member (uploader)" in (_conflict(reviewer_role="uploader") or "")
    assert "member (admin)" in (_conflict(reviewer_role="admin") or "")
    assert "both from" in (_conflict(reviewer_organisation=" quansight ") or "")
    # Unknown organisations never count as the same.
    assert _conflict(reviewer_organisation=None, requester_organisation=None) is None
    assert _conflict(reviewer_organisation="", requester_organisation="  ") is None


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_organisation_comparison_ignores_case_and_spacing(org: str) -> None:
    assert same_organisation(org, f"  {org.upper()} ".replace(" ", "  ")) == (
        " ".join(org.split()).casefold() == " ".join(org.upper().split()).casefold()
    )
    assert not same_organisation(org, None)


def test_representation_warnings() -> None:
    assert len(representation_warnings("p", [])) == 1
    [one] = representation_warnings("p", [("a", "X")])
    assert "1 admin:" in one
    assert representation_warnings("p", [("a", "X"), ("b", "Y")]) == []
    [same] = representation_warnings("p", [("a", "X"), ("b", " x ")])
    assert "all admins" in same
    assert representation_warnings("p", [("a", "X"), ("b", None)]) == []


def test_scope_within() -> None:
    assert scope_within(None, None) and scope_within(None, {"a"})
    assert scope_within(frozenset({"a", "b"}), {"a"})
    assert not scope_within(frozenset({"a"}), {"a", "b"})
    assert not scope_within(frozenset({"a"}), None)


def test_expiry_warning() -> None:
    window = timedelta(days=14)
    assert expiry_warning("ci", None, NOW, window) is None
    assert expiry_warning("ci", NOW + timedelta(days=15), NOW, window) is None
    assert "expires in 3 days" in (expiry_warning("ci", NOW + timedelta(days=3), NOW, window) or "")
    assert "in 3 days" in (
        expiry_warning("ci", NOW + timedelta(days=2, hours=1), NOW, window) or ""
    )
    assert "within a day" in (expiry_warning("ci", NOW + timedelta(hours=5), NOW, window) or "")
    assert "expired on" in (expiry_warning("ci", NOW - timedelta(hours=1), NOW, window) or "")


def test_token_names() -> None:
    assert validate_token_name("  ci nightly ") == "ci nightly"
    for bad in ("", "   ", "x" * 101, "tab\there"):
        with pytest.raises(InvalidRequest):
            validate_token_name(bad)


PUB = PublisherSpec("Octo-Org/octo-repo", "nightly.yml")


def _claims(**kw: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "repository": "octo-org/octo-repo",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/nightly.yml@refs/heads/main",
        "repository_owner_id": "1",
        "repository_id": "2",
    }
    claims.update(kw)
    return claims


def test_claims_match_repository_workflow_environment() -> None:
    assert claims_mismatch(_claims(), PUB) is None
    assert "not 'Octo-Org/octo-repo'" in (
        claims_mismatch(_claims(repository="octo-org/x"), PUB) or ""
    )
    wrong_wf = _claims(workflow_ref="octo-org/octo-repo/.github/workflows/Nightly.yml@refs/heads/x")
    assert "not the registered workflow" in (claims_mismatch(wrong_wf, PUB) or "")
    # A workflow of another repository with the same file name does not match.
    other = _claims(workflow_ref="evil/repo/.github/workflows/nightly.yml@refs/heads/main")
    assert claims_mismatch(other, PUB) is not None
    assert claims_mismatch(
        _claims(workflow_ref="octo-org/octo-repo/.github/workflows/nightly.yml"), PUB
    )
    assert (
        claims_mismatch(_claims(workflow_ref=None), PUB)
        == "the token carries no workflow_ref claim"
    )
    assert claims_mismatch(_claims(repository=None), PUB) is not None
    env = PublisherSpec("octo-org/octo-repo", "nightly.yml", "Nightly")
    assert claims_mismatch(_claims(environment="nightly"), env) is None
    assert "environment None" in (claims_mismatch(_claims(), env) or "")
    assert "environment 'prod'" in (claims_mismatch(_claims(environment="prod"), env) or "")


@given(st.sampled_from(["lower", "upper", "title"]))
def test_repository_case_never_matters(case: str) -> None:
    repo = getattr("octo-org/octo-repo", case)()
    claims = _claims(
        repository=repo, workflow_ref=f"{repo}/.github/workflows/nightly.yml@refs/tags/v1"
    )
    assert claims_mismatch(claims, PUB) is None


def test_validate_publisher() -> None:
    assert validate_publisher(" a/b ", ".github/workflows/x.yaml") == PublisherSpec("a/b", "x.yaml")
    assert validate_publisher("a/b", "x.yml", "  ").environment is None
    for repo, wf in [
        ("a", "x.yml"),
        ("a/b/c", "x.yml"),
        ("-a/b", "x.yml"),
        ("a/b", "x"),
        ("a/b", "../x.yml"),
        ("a/b", "dir/x.yml"),
    ]:
        with pytest.raises(InvalidRequest):
            validate_publisher(repo, wf)
