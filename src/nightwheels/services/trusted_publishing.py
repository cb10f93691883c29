"""Trusted publishing: a CI job trades its OIDC token for a short-lived upload token.

A project admin registers a GitHub Actions publisher (repository, workflow file, optional
environment and ref, optionally the repository's numeric ids). The job's OIDC token (a JWT)
is verified here against the configured key set (JWKS), issuer, audience and lifetime; its
claims are matched by ``core.trusted_publishing``. Each OIDC token is exchanged at most once
(its ``jti`` is stored, unique).

Several projects may register the same workflow: each registration is its project admin's
own decision, and none changes what the workflow can do elsewhere. An exchange that names no
project gets a token for every project whose registration accepts the token (as PyPI does),
so a registration on someone else's project never makes the rightful workflow's exchange
fail; naming ``project`` narrows the token to that one. Removing a registration takes its
project out of every live token at once, and nothing more.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import Permission
from nightwheels.core.tokens import generate_token
from nightwheels.core.trusted_publishing import (
    MAX_OIDC_LIFETIME,
    REQUIRED_CLAIMS,
    PublisherSpec,
    claims_mismatch,
    event_refusal,
    lifetime_refusal,
    validate_publisher,
)
from nightwheels.db.models import Project, Token, TrustedPublisher, utcnow
from nightwheels.errors import (
    Conflict,
    Forbidden,
    NotFound,
    OidcTokenReused,
    Unauthenticated,
    Unavailable,
)
from nightwheels.services import audit
from nightwheels.services.accounts import get_project
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal, authenticate, require_project_admin
from nightwheels.services.context import Services

ALGORITHMS = ["RS256"]
LEEWAY = 30  # seconds of clock skew tolerated on exp / nbf / iat
MAX_OIDC_TOKEN = 16 * 1024


@dataclass(frozen=True)
class PublisherInfo:
    id: int
    project: str
    provider: str
    repository: str
    workflow: str
    environment: str | None
    ref: str | None
    repository_owner_id: str | None
    repository_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ExchangedToken:
    token: str
    project: str  # the first of ``projects``
    expires_at: datetime
    publisher: str
    projects: tuple[str, ...] = ()


class JwksCache:
    """The issuer's signing keys, fetched with httpx and kept for ``lifespan`` seconds.

    An unknown key id triggers one refetch (keys rotate), at most every ``cooldown`` seconds
    so that tokens with made-up key ids cannot make the server hammer the issuer.
    """

    def __init__(self, url: str, lifespan: float = 300, cooldown: float = 30) -> None:
        self.url = url
        self.lifespan = lifespan
        self.cooldown = cooldown
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = -float("inf")
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        try:
            response = httpx.get(self.url, timeout=10, follow_redirects=True)
            response.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise Unavailable(
                f"could not fetch the OIDC signing keys from {self.url}: {exc}; retry later"
            ) from None
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
        self._fetched = time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            age = time.monotonic() - self._fetched
            if age > self.lifespan or (kid not in self._keys and age > self.cooldown):
                self._fetch()
            found = self._keys.get(kid)
        if found is None:
            raise Unauthenticated(f"the OIDC token is signed with an unknown key {kid!r}")
        return found


class OidcVerifier:
    """Verifies OIDC tokens from one issuer for one audience."""

    def __init__(
        self, issuer: str, audience: str, jwks_url: str, max_lifetime: int = MAX_OIDC_LIFETIME
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.max_lifetime = max_lifetime
        self.jwks = JwksCache(jwks_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier:
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_jwks_url,
            settings.oidc_max_token_seconds,
        )

    @classmethod
    def shared(cls, settings: Settings) -> OidcVerifier:
        """One verifier (and key cache) per configuration, for every edge of the process."""
        key = (
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_jwks_url,
            settings.oidc_max_token_seconds,
        )
        with _SHARED_LOCK:
            verifier = _SHARED.get(key)
            if verifier is None:
                if len(_SHARED) >= 8:  # settings do not change at run time; tests make a few
                    _SHARED.clear()
                verifier = _SHARED[key] = cls.from_settings(settings)
            return verifier

    def verify(self, token: str) -> dict[str, Any]:
        if not token or len(token) > MAX_OIDC_TOKEN:
            raise Unauthenticated("the OIDC token is empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the OIDC token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(
                f"the OIDC token is signed with {header.get('alg')!r}; only RS256 is accepted"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the OIDC token names no signing key (kid)")
        key = self.jwks.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": list(REQUIRED_CLAIMS), "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the OIDC token has expired: request a fresh one") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated(
                "the OIDC token is not valid yet (nbf/iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the OIDC token is not for this index: request it with audience {self.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the OIDC token was not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the OIDC token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the OIDC token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the OIDC token is not valid: {exc}") from None
        too_long = lifetime_refusal(claims, self.max_lifetime)
        if too_long is not None:
            raise Unauthenticated(too_long)
        return claims


_SHARED: dict[tuple[str, str, str, int], OidcVerifier] = {}
_SHARED_LOCK = threading.Lock()


def _info(publisher: TrustedPublisher, project: Project) -> PublisherInfo:
    return PublisherInfo(
        id=publisher.id,
        project=project.name,
        provider=publisher.provider,
        repository=publisher.repository,
        workflow=publisher.workflow,
        environment=publisher.environment,
        ref=publisher.ref,
        repository_owner_id=publisher.repository_owner_id,
        repository_id=publisher.repository_id,
        created_at=publisher.created_at,
    )


def _spec(publisher: TrustedPublisher) -> PublisherSpec:
    return PublisherSpec(
        publisher.repository,
        publisher.workflow,
        publisher.environment,
        publisher.ref,
        publisher.repository_owner_id,
        publisher.repository_id,
    )


def add_publisher(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    repository: str,
    workflow: str,
    environment: str | None = None,
    ref: str | None = None,
    repository_owner_id: str | int | None = None,
    repository_id: str | int | None = None,
    principal: Principal | None = None,
) -> PublisherInfo:
    """Register a publisher on one project (this changes nothing for other projects).

    Without ``repository_owner_id`` / ``repository_id`` the ids are recorded on the first
    successful exchange; from then on a token from a repository with other ids is refused.
    """
    project = get_project(session, project_name)
    if principal is not None:
        require_project_admin(session, principal, project, "register trusted publishers")
    spec = validate_publisher(
        repository,
        workflow,
        environment,
        ref=ref,
        repository_owner_id=repository_owner_id,
        repository_id=repository_id,
    )
    for existing in session.execute(
        select(TrustedPublisher).where(TrustedPublisher.project_id == project.id)
    ).scalars():
        if (
            existing.repository.lower() == spec.repository.lower()
            and existing.workflow == spec.workflow
            and (existing.environment or "").lower() == (spec.environment or "").lower()
            and existing.ref == spec.ref
        ):
            raise Conflict(f"this publisher is already registered for {project.name!r}")
    publisher = TrustedPublisher(
        project_id=project.id,
        provider="github",
        repository=spec.repository,
        workflow=spec.workflow,
        environment=spec.environment,
        ref=spec.ref,
        repository_owner_id=spec.repository_owner_id,
        repository_id=spec.repository_id,
        created_by_id=principal.user_id if principal else None,
    )
    session.add(publisher)
    session.flush()
    audit.record(
        session,
        actor,
        "publisher.add",
        project=project.name,
        target=f"github:{spec.repository}",
        workflow=spec.workflow,
        environment=spec.environment,
        ref=spec.ref,
        repository_owner_id=spec.repository_owner_id,
        repository_id=spec.repository_id,
    )
    return _info(publisher, project)


def list_publishers(
    session: Session, project_name: str, principal: Principal | None = None
) -> list[PublisherInfo]:
    project = get_project(session, project_name)
    if principal is not None:
        require_project_admin(session, principal, project, "see its trusted publishers")
    rows = session.execute(
        select(TrustedPublisher)
        .where(TrustedPublisher.project_id == project.id)
        .order_by(TrustedPublisher.id)
    ).scalars()
    return [_info(p, project) for p in rows]


def remove_publisher(
    session: Session,
    actor: Actor,
    project_name: str,
    publisher_id: int,
    principal: Principal | None = None,
) -> PublisherInfo:
    """Remove a publisher; its project leaves every token minted for it, at once.

    A token minted for several projects (several registrations of one workflow) keeps the
    others: one project's admin removing their registration never cuts off another's.
    """
    project = get_project(session, project_name)
    if principal is not None:
        require_project_admin(session, principal, project, "remove trusted publishers")
    publisher = session.get(TrustedPublisher, publisher_id)
    if publisher is None or publisher.project_id != project.id:
        raise NotFound(f"project {project.name!r} has no trusted publisher #{publisher_id}")
    info = _info(publisher, project)
    _withdraw_tokens(session, publisher, project.name)
    session.delete(publisher)
    session.flush()
    audit.record(
        session,
        actor,
        "publisher.remove",
        project=project.name,
        target=f"github:{info.repository}",
        workflow=info.workflow,
        environment=info.environment,
    )
    return info


def _same_workflow(publisher: TrustedPublisher) -> list[TrustedPublisher]:
    """Every registration of ``publisher``'s repository and workflow, on any project."""
    session = Session.object_session(publisher)
    assert session is not None
    return list(
        session.execute(
            select(TrustedPublisher)
            .where(
                func.lower(TrustedPublisher.repository) == publisher.repository.lower(),
                TrustedPublisher.workflow == publisher.workflow,
            )
            .order_by(TrustedPublisher.id)
        ).scalars()
    )


def _withdraw_tokens(session: Session, publisher: TrustedPublisher, project: str) -> None:
    """Take ``project`` out of the tokens minted through any registration of this workflow;
    delete those left with no project, re-point those that named ``publisher``."""
    siblings = [p for p in _same_workflow(publisher) if p.id != publisher.id]
    names = dict(
        session.execute(
            select(Project.id, Project.name).where(Project.id.in_({p.project_id for p in siblings}))
        ).all()
    )
    tokens = session.execute(
        select(Token).where(Token.publisher_id.in_([publisher.id, *(p.id for p in siblings)]))
    ).scalars()
    for token in tokens:
        scope = [name for name in token.projects or [] if name != project]
        if token.publisher_id != publisher.id and len(scope) == len(token.projects or []):
            continue
        # The registration it names, if that stays in scope; else one that does.
        heirs = [p for p in siblings if names.get(p.project_id) in scope]
        heir = next((p for p in heirs if p.id == token.publisher_id), None) or next(
            iter(heirs), None
        )
        if not scope or heir is None:
            session.delete(token)
            continue
        token.projects = scope
        token.publisher_id = heir.id
    session.flush()


def _match(
    session: Session, claims: dict[str, Any], project: str | None
) -> list[tuple[TrustedPublisher, Project]]:
    """Every registration (of ``project``, if named) that accepts these claims."""
    refusal = event_refusal(claims)
    if refusal is not None:
        raise Forbidden(refusal)
    repository = claims.get("repository")
    if not isinstance(repository, str):
        raise Unauthenticated("the OIDC token has no repository claim")
    stmt = (
        select(TrustedPublisher, Project)
        .join(Project, Project.id == TrustedPublisher.project_id)
        .where(func.lower(TrustedPublisher.repository) == repository.lower())
        .order_by(TrustedPublisher.id)
    )
    if project is not None:
        stmt = stmt.where(Project.name == normalize_name(project))
    rows = session.execute(stmt).all()
    where = f" for project {normalize_name(project)!r}" if project else ""
    if not rows:
        raise Forbidden(f"no trusted publisher is registered for {repository!r}{where}")
    matches: list[tuple[TrustedPublisher, Project]] = []
    reasons: list[str] = []
    for publisher, proj in rows:
        reason = claims_mismatch(claims, _spec(publisher))
        if reason is None:
            matches.append((publisher, proj))
        else:
            reasons.append(reason)
    if not matches:
        raise Forbidden(f"no registered publisher{where} accepts this token: {reasons[0]}")
    return matches


def _pin(
    session: Session, actor: Actor, matches: list[tuple[TrustedPublisher, Project]], claims: dict
) -> None:
    """Record the repository's ids on registrations that have none yet (first exchange).

    The update is conditional, so of two first exchanges racing with different ids only
    one can pin; the other is re-checked against what was pinned and refused.
    """
    ids = {"repository_owner_id": str(claims["repository_owner_id"])}
    ids["repository_id"] = str(claims["repository_id"])
    for publisher, proj in matches:
        for column, value in ids.items():
            if getattr(publisher, column) is not None:
                continue
            done = session.execute(
                update(TrustedPublisher)
                .where(
                    TrustedPublisher.id == publisher.id,
                    getattr(TrustedPublisher, column).is_(None),
                )
                .values({column: value})
                .execution_options(synchronize_session=False)
            )
            session.refresh(publisher)
            if done.rowcount == 0 and getattr(publisher, column) != value:  # type: ignore[attr-defined]
                raise Forbidden(
                    f"the token's {column} is {value!r}, not the registered "
                    f"{getattr(publisher, column)!r}"
                )
            if done.rowcount:  # type: ignore[attr-defined]
                audit.record(
                    session,
                    actor,
                    "publisher.pin",
                    project=proj.name,
                    target=f"github:{publisher.repository}",
                    workflow=publisher.workflow,
                    **{column: value},
                )


# Minted tokens are kept this long after they expire, then deleted (the audit log keeps the
# exchange). Their ``jti`` guards against replay only while the OIDC token is still valid, and
# OIDC tokens live minutes, so a day is ample.
PURGE_AFTER = timedelta(days=1)


def _purge_expired(session: Session) -> None:
    """Delete trusted-publishing tokens that expired more than :data:`PURGE_AFTER` ago."""
    session.execute(
        delete(Token).where(
            Token.publisher_id.is_not(None), Token.expires_at < utcnow() - PURGE_AFTER
        )
    )


def exchange(
    session: Session,
    verifier: OidcVerifier,
    oidc_token: str,
    *,
    lifetime: timedelta,
    project: str | None = None,
    source: str | None = None,
) -> ExchangedToken:
    """Verify ``oidc_token`` and mint an upload token for the projects that registered it.

    With ``project``, the token reaches that project only; without, every project whose
    registration accepts the token (see the module docstring).
    """
    claims = verifier.verify(oidc_token)
    matches = _match(session, claims, project)
    publisher = matches[0][0]
    projects = tuple(sorted({proj.name for _, proj in matches}))
    actor = Actor(name=f"{publisher.provider}:{publisher.repository}", source=source)
    _purge_expired(session)
    jti = str(claims["jti"])[:200]
    if session.execute(select(Token.id).where(Token.jti == jti)).first() is not None:
        raise OidcTokenReused("this OIDC token was already exchanged: request a new one")
    _pin(session, actor, matches, claims)
    new = generate_token()
    expires_at = utcnow() + lifetime
    run = claims.get("run_id")
    name = f"{publisher.workflow} run {run}" if run else publisher.workflow
    row = Token(
        user_id=None,
        publisher_id=publisher.id,
        name=name[:100],
        prefix=new.prefix,
        digest=new.digest,
        permissions=[Permission.UPLOAD.value],
        projects=list(projects),
        expires_at=expires_at,
        jti=jti,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise OidcTokenReused("this OIDC token was already exchanged: request a new one") from None
    for proj_name in projects:
        audit.record(
            session,
            actor,
            "token.exchange",
            project=proj_name,
            target=name[:100],
            prefix=new.prefix,
            projects=list(projects),
            workflow_ref=claims.get("workflow_ref"),
            ref=claims.get("ref"),
            sha=claims.get("sha"),
            run_id=run,
            environment=claims.get("environment"),
            event_name=claims.get("event_name"),
            expires_at=expires_at.isoformat(),
        )
    return ExchangedToken(new.secret, projects[0], expires_at, actor.name or "", projects)


def mint(
    services: Services, oidc_token: str, *, project: str | None = None, source: str | None = None
) -> ExchangedToken:
    """:func:`exchange` with this server's verifier and token lifetime: what every edge calls
    (``/api/v1/trusted-publishing/exchange`` and PyPI's ``/_/oidc/mint-token``)."""
    verifier = OidcVerifier.shared(services.settings)
    lifetime = timedelta(minutes=services.settings.trusted_publishing_token_minutes)
    return services.db.run_write(
        lambda s: exchange(
            s, verifier, oidc_token, lifetime=lifetime, project=project, source=source
        )
    )


def burn(session: Session, token: str, source: str | None = None) -> str:
    """Invalidate a minted token at once (the client is done uploading); its name.

    What uv does after ``uv publish`` (PyPI's ``/_/oidc/burn-token``): a token that no longer
    exists cannot be used by whoever reads it later from a log or a crashed job's memory.
    Personal tokens are revoked elsewhere (``nightwheels token revoke``).
    """
    principal = authenticate(session, token, source)
    if principal.publisher_id is None:
        raise Forbidden(
            "only tokens minted by trusted publishing are burned here: revoke a personal token "
            "with nightwheels token revoke"
        )
    row = session.get(Token, principal.token_id)
    prefix = row.prefix if row is not None else None
    if row is not None:
        session.delete(row)
        session.flush()
    for project in sorted(principal.projects or ()):
        audit.record(
            session,
            Actor(name=principal.user_name, source=source),
            "token.burn",
            project=project,
            target=principal.token_name,
            prefix=prefix,
        )
    return principal.token_name
