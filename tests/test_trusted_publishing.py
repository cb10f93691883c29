"""Trusted publishing: a GitHub Actions OIDC token for a short-lived upload token.

A local issuer (RSA key pair, JWKS on loopback) signs tokens as GitHub does; the live
server verifies signature, issuer, audience, lifetime and claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nightwheels.core.trusted_publishing import claims_mismatch, validate_publisher
from nightwheels.errors import InvalidRequest, Unauthenticated, Unavailable
from nightwheels.services.trusted_publishing import OidcVerifier
from tests.support import clients
from tests.support.access import Accounts, Api, forbidden, refused, upload
from tests.support.backends import BACKENDS, open_backend
from tests.support.cli import Cli
from tests.support.oidc import GITHUB_ISSUER, Issuer, github_id, new_key
from tests.support.server import LiveServer, free_port
from tests.support.wheels import make_wheel

EXCHANGE = "/trusted-publishing/exchange"


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, issuer: Issuer
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tp")
    with (
        open_backend(request) as backend,
        LiveServer(
            data=root / "data",
            env={"NIGHTWHEELS_OIDC_JWKS_URL": issuer.jwks_url},
            backend=backend,
        ) as server,
    ):
        yield server


@pytest.fixture(scope="module")
def people(live: LiveServer) -> Iterator[Accounts]:
    accounts = Accounts(live.data, live.backend)
    accounts.user("owner")
    accounts.user("helper")
    accounts.role("octo", "owner", "admin")
    accounts.role("octo", "helper", "uploader")
    accounts.role("other", "owner", "admin")
    try:
        yield accounts
    finally:
        accounts.close()


@pytest.fixture(scope="module")
def publisher(live: LiveServer, people: Accounts) -> dict:
    return Api(live, people.token("owner", name="setup")).ok(
        "POST",
        "/projects/octo/publishers",
        {"repository": "octo-org/octo-repo", "workflow": "nightly.yml"},
    )


def test_register_publisher_rules(live: LiveServer, people: Accounts) -> None:
    owner = Api(live, people.token("owner", name="reg"))
    helper = Api(live, people.token("helper"))
    body = {"repository": "octo-org/other-repo", "workflow": "build.yaml", "environment": "pypi"}
    forbidden(helper.post("/projects/octo/publishers", body), "only admins of project 'octo'")
    forbidden(helper.get("/projects/octo/publishers"), "only admins of project 'octo'")
    up = Api(live, people.token("owner", "octo", permission="upload", name="up"))
    forbidden(up.post("/projects/octo/publishers", body), "is an upload token")
    refused(
        owner.post("/projects/octo/publishers", {**body, "repository": "not a repo"}),
        400,
        "owner/name",
    )
    refused(
        owner.post("/projects/octo/publishers", {**body, "workflow": "../x.yml"}),
        400,
        "workflow file name",
    )
    refused(owner.post("/projects/nope/publishers", body), 404, "no project named 'nope'")
    made = owner.ok("POST", "/projects/octo/publishers", body)
    assert made["environment"] == "pypi" and made["workflow"] == "build.yaml"
    refused(owner.post("/projects/octo/publishers", body), 409, "already registered")
    forbidden(helper.delete(f"/projects/octo/publishers/{made['id']}"), "only admins")
    owner.ok("DELETE", f"/projects/octo/publishers/{made['id']}")
    refused(owner.delete(f"/projects/octo/publishers/{made['id']}"), 404, "no trusted publisher")


def test_exchange_then_upload_with_twine(
    live: LiveServer, people: Accounts, issuer: Issuer, publisher: dict, tmp_path: Path
) -> None:
    anon = Api(live)
    answer = anon.ok("POST", EXCHANGE, {"token": issuer.token()})
    assert answer["project"] == "octo" and answer["publisher"] == "github:octo-org/octo-repo"
    expires = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - datetime.now(expires.tzinfo) <= timedelta(minutes=15)

    wheel = make_wheel(tmp_path, "octo", "1.0.dev1")
    clients.twine_upload(live.upload_url, answer["token"], wheel)
    # Scoped to its project, upload only.
    minted = Api(live, answer["token"])
    assert minted.ok("GET", "/me")["trusted_publisher"] is True
    forbidden(minted.get("/tokens"), "trusted publisher's token can only upload")
    forbidden(minted.put("/projects/octo/members/helper"), "can only upload")
    forbidden(
        upload(live, answer["token"], make_wheel(tmp_path / "o", "other", "1.0")),
        "may not upload to 'other'",
    )
    # The audit log names the publisher and the run.
    events = Api(live, people.token("owner", name="aud")).ok("GET", "/audit", project="octo")
    by_action = {e["action"]: e for e in events["events"]}
    assert by_action["token.exchange"]["actor"] == "github:octo-org/octo-repo"
    assert by_action["token.exchange"]["details"]["run_id"] == "4242"
    assert by_action["file.upload"]["actor"] == "github:octo-org/octo-repo"


def test_each_oidc_token_is_exchanged_once(
    live: LiveServer, issuer: Issuer, publisher: dict
) -> None:
    token = issuer.token()
    Api(live).ok("POST", EXCHANGE, {"token": token})
    refused(Api(live).post(EXCHANGE, {"token": token}), 401, "already exchanged")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: i.sign(i.claims(), key=new_key()), "signature does not verify"),
        (lambda i: i.sign(i.claims(), kid="unknown-kid"), "unknown key 'unknown-kid'"),
        (lambda i: i.token(issuer="https://evil.example"), f"not issued by {GITHUB_ISSUER!r}"),
        (lambda i: i.token(audience="pypi"), "audience 'nightwheels'"),
        (lambda i: i.token(exp=1_000_000, iat=999_000, nbf=999_000), "expired"),
        (lambda i: i.token(nbf=4_000_000_000), "not valid yet"),
        (lambda i: i.token(jti=None), "no 'jti' claim"),
        (lambda i: i.token(workflow_ref=None), "no 'workflow_ref' claim"),
        (lambda i: i.sign(i.claims(), algorithm="HS256"), "only RS256"),
        (lambda i: "not.a.jwt", "not a JWT"),
    ],
    ids=[
        "foreign-key",
        "unknown-kid",
        "issuer",
        "audience",
        "expired",
        "not-yet-valid",
        "no-jti",
        "no-workflow-ref",
        "hs256",
        "garbage",
    ],
)
def test_invalid_oidc_tokens_are_refused(
    live: LiveServer, issuer: Issuer, publisher: dict, make, reason: str
) -> None:
    refused(Api(live).post(EXCHANGE, {"token": make(issuer)}), 401, reason)


def test_claims_must_match_a_registered_publisher(
    live: LiveServer, people: Accounts, issuer: Issuer, publisher: dict
) -> None:
    anon = Api(live)
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token(workflow="release.yml")}),
        "is not the registered workflow 'octo-org/octo-repo/.github/workflows/nightly.yml'",
    )
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token(repository="evil/octo-repo")}),
        "no trusted publisher is registered for 'evil/octo-repo'",
    )
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token(), "project": "other"}),
        "for project 'other'",
    )
    # A publisher bound to an environment needs a job in that environment.
    owner = Api(live, people.token("owner", name="env"))
    env_pub = owner.ok(
        "POST",
        "/projects/other/publishers",
        {"repository": "octo-org/env-repo", "workflow": "nightly.yml", "environment": "nightly"},
    )
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token("octo-org/env-repo")}),
        "environment None, not the registered 'nightly'",
    )
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token("octo-org/env-repo", environment="prod")}),
        "environment 'prod'",
    )
    ok = anon.ok(
        "POST", EXCHANGE, {"token": issuer.token("Octo-Org/Env-Repo", environment="Nightly")}
    )
    assert ok["project"] == "other"

    # Removing the publisher stops the tokens it obtained at once.
    owner.ok("DELETE", f"/projects/other/publishers/{env_pub['id']}")
    refused(Api(live, ok["token"]).get("/me"), 401, "invalid token")


def test_verifier_reports_an_unreachable_key_set(issuer: Issuer) -> None:
    verifier = OidcVerifier(GITHUB_ISSUER, "nightwheels", f"http://127.0.0.1:{free_port()}/jwks")
    token = issuer.token()
    with pytest.raises(Unavailable, match="could not fetch the OIDC signing keys"):
        verifier.verify(token)
    with pytest.raises(Unauthenticated, match="not a JWT"):
        verifier.verify("x")


def test_key_set_is_cached_and_refetched_for_new_keys(issuer: Issuer) -> None:
    verifier = OidcVerifier(GITHUB_ISSUER, "nightwheels", issuer.jwks_url)
    verifier.jwks.cooldown = 0
    before = issuer.requests
    for _ in range(3):
        verifier.verify(issuer.token())
    assert issuer.requests == before + 1
    # The issuer rotates its key: an unknown kid triggers one refetch.
    issuer.key, old = new_key(), issuer.key
    issuer.kid, old_kid = "test-key-2", issuer.kid
    try:
        assert verifier.verify(issuer.token())["repository"] == "octo-org/octo-repo"
        assert issuer.requests == before + 2
    finally:
        issuer.key, issuer.kid = old, old_kid


def test_expired_minted_tokens_are_purged_a_day_later(
    live: LiveServer, issuer: Issuer, publisher: dict
) -> None:
    from sqlalchemy import select, update

    from nightwheels.db.models import Token

    def minted(secret: str) -> Token | None:
        prefix = secret.split("_")[1]
        with services.db.read() as session:
            return session.scalars(select(Token).where(Token.prefix == prefix)).first()

    services = live.backend.services(live.data)
    try:
        old = Api(live).ok("POST", EXCHANGE, {"token": issuer.token()})["token"]
        recent = Api(live).ok("POST", EXCHANGE, {"token": issuer.token()})["token"]
        now = datetime.now(UTC)
        with services.db.write() as session:
            for secret, ago in ((old, timedelta(days=2)), (recent, timedelta(hours=2))):
                session.execute(
                    update(Token)
                    .where(Token.prefix == secret.split("_")[1])
                    .values(expires_at=now - ago)
                )
        refused(Api(live, old).get("/me"), 401, "expired")
        Api(live).ok("POST", EXCHANGE, {"token": issuer.token()})
        assert minted(old) is None  # purged by the next exchange
        assert minted(recent) is not None  # expired, but within the day's grace
    finally:
        services.close()


# --- issue 14 item 5: resurrection, fork events, ref, lifetime, squatting -----------------


def test_repository_ids_are_pinned_on_first_exchange(
    live: LiveServer, people: Accounts, issuer: Issuer
) -> None:
    """A repository deleted and re-created under the same name (new ids) is refused."""
    owner = Api(live, people.token("owner", name="pin"))
    pub = owner.ok(
        "POST", "/projects/octo/publishers", {"repository": "pin-org/pin", "workflow": "n.yml"}
    )
    assert pub["repository_owner_id"] is None and pub["repository_id"] is None
    anon = Api(live)
    anon.ok("POST", EXCHANGE, {"token": issuer.token("pin-org/pin", "n.yml")})
    pinned = {p["id"]: p for p in owner.ok("GET", "/projects/octo/publishers")}[pub["id"]]
    assert pinned["repository_owner_id"] == github_id("pin-org")
    assert pinned["repository_id"] == github_id("pin-org/pin")
    # The account is deleted and someone else registers the name: new owner id.
    forbidden(
        anon.post(
            EXCHANGE, {"token": issuer.token("pin-org/pin", "n.yml", repository_owner_id="7")}
        ),
        "repository_owner_id is '7', not the registered",
    )
    # The repository alone re-created: new repository id.
    forbidden(
        anon.post(EXCHANGE, {"token": issuer.token("pin-org/pin", "n.yml", repository_id="8")}),
        "repository_id is '8', not the registered",
    )
    forbidden(
        anon.post(
            EXCHANGE, {"token": issuer.token("pin-org/pin", "n.yml", repository_owner_id=None)}
        ),
        "no repository_owner_id claim",
    )
    events = owner.ok("GET", "/audit", project="octo", action="publisher.pin")["events"]
    pins = [e for e in events if e["target"] == "github:pin-org/pin"]
    assert {"repository_id", "repository_owner_id"} <= {k for e in pins for k in e["details"]}
    owner.ok("DELETE", f"/projects/octo/publishers/{pub['id']}")


def test_repository_ids_given_at_registration(
    live: LiveServer, people: Accounts, issuer: Issuer
) -> None:
    owner = Api(live, people.token("owner", name="ids"))
    body = {"repository": "ids-org/ids", "workflow": "n.yml", "repository_owner_id": 4242}
    refused(
        owner.post("/projects/octo/publishers", {**body, "repository_owner_id": "42a"}),
        400,
        "not a GitHub repository owner id",
    )
    pub = owner.ok("POST", "/projects/octo/publishers", body)
    assert pub["repository_owner_id"] == "4242"
    forbidden(
        Api(live).post(EXCHANGE, {"token": issuer.token("ids-org/ids", "n.yml")}),
        "not the registered '4242'",
    )
    made = Api(live).ok(
        "POST",
        EXCHANGE,
        {"token": issuer.token("ids-org/ids", "n.yml", repository_owner_id="4242")},
    )
    assert made["projects"] == ["octo"]
    owner.ok("DELETE", f"/projects/octo/publishers/{pub['id']}")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"event_name": "pull_request", "ref": "refs/pull/1/merge"}, "'pull_request' events"),
        ({"event_name": "pull_request_target"}, "'pull_request_target' events"),
        ({"event_name": "issue_comment", "ref": "refs/pull/1/merge"}, "pull request's ref"),
    ],
    ids=["pull_request", "pull_request_target", "pull-ref"],
)
def test_events_a_fork_can_start_never_publish(
    live: LiveServer, issuer: Issuer, publisher: dict, claims: dict, reason: str
) -> None:
    forbidden(Api(live).post(EXCHANGE, {"token": issuer.token(**claims)}), reason)


def test_a_publisher_can_be_restricted_to_one_ref(
    live: LiveServer, people: Accounts, issuer: Issuer
) -> None:
    owner = Api(live, people.token("owner", name="ref"))
    body = {"repository": "ref-org/ref", "workflow": "n.yml", "ref": "main"}
    refused(owner.post("/projects/octo/publishers", body), 400, "refs/heads/BRANCH")
    pub = owner.ok("POST", "/projects/octo/publishers", {**body, "ref": "refs/heads/main"})
    feature = "refs/heads/feature"
    forbidden(
        Api(live).post(EXCHANGE, {"token": issuer.token("ref-org/ref", "n.yml", ref=feature)}),
        "ref 'refs/heads/feature', not the registered 'refs/heads/main'",
    )
    Api(live).ok("POST", EXCHANGE, {"token": issuer.token("ref-org/ref", "n.yml")})
    owner.ok("DELETE", f"/projects/octo/publishers/{pub['id']}")


def test_oidc_tokens_living_longer_than_github_issues_are_refused(
    live: LiveServer, issuer: Issuer, publisher: dict
) -> None:
    year = 365 * 24 * 3600
    refused(
        Api(live).post(EXCHANGE, {"token": issuer.token(lifetime=year)}),
        401,
        f"valid for {year} s (exp - iat), more than the 900 s",
    )
    Api(live).ok("POST", EXCHANGE, {"token": issuer.token(lifetime=900)})


def test_a_registration_on_another_project_changes_nothing_for_the_rightful_workflow(
    live: LiveServer, people: Accounts, issuer: Issuer, tmp_path: Path
) -> None:
    """The squatter registers alice's workflow first, on their own project, then removes it."""
    people.user("alice")
    people.user("mallory")
    people.role("proja", "alice", "admin")
    people.role("mproj", "mallory", "admin")
    alice = Api(live, people.token("alice", name="setup"))
    mallory = Api(live, people.token("mallory", name="setup"))
    workflow = {"repository": "alice-org/proja", "workflow": "nightly.yml"}
    squat = mallory.ok("POST", "/projects/mproj/publishers", workflow)
    mallory.ok(
        "POST",
        "/projects/mproj/publishers",
        {**workflow, "environment": "x", "repository_owner_id": "1"},
    )
    alice.ok("POST", "/projects/proja/publishers", workflow)

    minted = Api(live).ok("POST", EXCHANGE, {"token": issuer.token("alice-org/proja")})
    assert minted["projects"] == ["mproj", "proja"]
    named = Api(live).ok(
        "POST", EXCHANGE, {"token": issuer.token("alice-org/proja"), "project": "proja"}
    )
    assert named["projects"] == ["proja"]
    wheel = make_wheel(tmp_path, "proja", "1.0.dev1")
    assert upload(live, minted["token"], wheel).status_code == 200
    # Alice sees the token among proja's, though it names mallory's registration.
    prefix = minted["token"].split("_")[1]
    assert prefix in {t["prefix"] for t in alice.ok("GET", "/projects/proja/tokens")}

    # Removing the squatting registration takes mproj out of the token, not proja.
    mallory.ok("DELETE", f"/projects/mproj/publishers/{squat['id']}")
    assert upload(live, minted["token"], make_wheel(tmp_path, "proja", "1.0.dev2")).is_success
    forbidden(
        upload(live, minted["token"], make_wheel(tmp_path / "m", "mproj", "1.0")),
        "may not upload to 'mproj'",
    )
    again = Api(live).ok("POST", EXCHANGE, {"token": issuer.token("alice-org/proja")})
    assert again["projects"] == ["proja"]


def test_publisher_patterns_are_ascii_and_whole(issuer: Issuer) -> None:
    for environment in ("prod\u017f", "pro\nd", "a/b"):
        with pytest.raises(InvalidRequest):
            validate_publisher("o/r", "n.yml", environment)
    for repository in ("o/r\u212a", "o\u0131/r"):
        with pytest.raises(InvalidRequest):
            validate_publisher(repository, "n.yml")
    with pytest.raises(InvalidRequest):
        validate_publisher("o/r", "n.yml", ref="refs/heads/ma\nin")
    with pytest.raises(InvalidRequest):
        validate_publisher("o/r", "n.yml", repository_owner_id="\u0661\u0662")  # Arabic digits
    spec = validate_publisher("o/prods", "n.yml", "prods")
    claims = issuer.claims("o/prods", "n.yml", environment="prod\u017f")
    assert "environment" in (claims_mismatch(claims, spec) or "")
    claims = issuer.claims("o/prod\u017f", "n.yml", environment="prods")
    assert "repository" in (claims_mismatch(claims, spec) or "")


def test_cli_registers_a_pinned_publisher_restricted_to_a_ref(
    live: LiveServer, people: Accounts
) -> None:
    cli = Cli(live, people.token("owner", name="cli"))
    added = cli(
        "project",
        "publisher",
        "add",
        "octo",
        "--repository",
        "cli-org/cli",
        "--workflow",
        "nightly.yml",
        "--ref",
        "refs/heads/main",
        "--owner-id",
        "12",
        "--repository-id",
        "34",
    )
    assert "cli-org/cli nightly.yml (ref refs/heads/main) may upload to octo" in added.stdout
    listing = cli("project", "publisher", "list", "octo").stdout
    row = next(line for line in listing.splitlines() if "cli-org/cli" in line)
    assert "refs/heads/main" in row and "12" in row
    bad = cli(
        "project", "publisher", "add", "octo", "--repository", "cli-org/cli",
        "--workflow", "nightly.yml", "--ref", "main", check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "refs/heads/BRANCH" in bad.stderr


def test_two_first_exchanges_with_different_ids_pin_one(
    live: LiveServer, people: Accounts, issuer: Issuer
) -> None:
    """A look-alike repository racing the rightful one's first exchange cannot pin its ids:
    the pin is a conditional update, and the loser is checked against what was pinned."""
    if live.backend.name != "postgres":
        pytest.skip("two concurrent writers: PostgreSQL (SQLite serialises every write)")
    from nightwheels.errors import Forbidden
    from nightwheels.services import trusted_publishing as tp
    from nightwheels.services.audit import Actor

    owner = Api(live, people.token("owner", name="race"))
    pub = owner.ok(
        "POST", "/projects/octo/publishers", {"repository": "race-org/race", "workflow": "n.yml"}
    )
    verifier = OidcVerifier(GITHUB_ISSUER, "nightwheels", issuer.jwks_url)
    impostor = verifier.verify(issuer.token("race-org/race", "n.yml", repository_owner_id="666"))
    services = live.backend.services(live.data)
    try:
        with services.db.write() as session:
            matches = tp._match(session, impostor, None)  # sees the publisher unpinned
            # Meanwhile the rightful repository's first exchange commits its ids.
            Api(live).ok("POST", EXCHANGE, {"token": issuer.token("race-org/race", "n.yml")})
            with pytest.raises(Forbidden, match="repository_owner_id is '666', not the registered"):
                tp._pin(session, Actor(name="impostor"), matches, impostor)
    finally:
        services.close()
    pinned = {p["id"]: p for p in owner.ok("GET", "/projects/octo/publishers")}[pub["id"]]
    assert pinned["repository_owner_id"] == github_id("race-org")
    owner.ok("DELETE", f"/projects/octo/publishers/{pub['id']}")
