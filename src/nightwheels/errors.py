"""Errors a user can act on.

Every failure that a person can fix is one of these types. The edges map them:
the HTTP server to ``status`` and a ``{"error": code, "message": ...}`` body (plain
text on the upload endpoint, which twine prints), the CLI to one line and an exit code.
"""

from __future__ import annotations


class NightwheelsError(Exception):
    """Base class: ``code`` is stable and machine-readable, the message is for people."""

    code = "error"
    status = 400
    exit_status = 1  # the CLI's exit code (2: a usage error, as argparse and click use)

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Seconds after which a retry may succeed (HTTP ``Retry-After`` on 429 and 503).
        self.retry_after = retry_after


class InvalidRequest(NightwheelsError):
    code = "invalid-request"
    status = 400


class InvalidName(NightwheelsError):
    code = "invalid-name"
    status = 400


class InvalidFilename(NightwheelsError):
    code = "invalid-filename"
    status = 400


class InvalidVersion(NightwheelsError):
    code = "invalid-version"
    status = 400


class InvalidDistribution(NightwheelsError):
    code = "invalid-distribution"
    status = 400


class InvalidMetadata(NightwheelsError):
    code = "invalid-metadata"
    status = 400


class DigestMismatch(NightwheelsError):
    code = "digest-mismatch"
    status = 400


class DistributionNotAllowed(NightwheelsError):
    code = "distribution-not-allowed"
    status = 400


class FileExists(NightwheelsError):
    code = "file-exists"
    status = 409


class ProjectClosed(NightwheelsError):
    """An archived or quarantined project (PEP 792) takes no uploads."""

    code = "project-closed"
    status = 409


class ProjectQuarantined(NightwheelsError):
    """A quarantined project (PEP 792) offers no file for download, by URL either."""

    code = "project-quarantined"
    status = 403


class TooLarge(NightwheelsError):
    code = "too-large"
    status = 413


class QuotaExceeded(NightwheelsError):
    code = "quota-exceeded"
    status = 413


class Unauthenticated(NightwheelsError):
    """No credentials, or credentials that are not valid (unknown, expired, revoked)."""

    code = "unauthenticated"
    status = 401


class OidcTokenReused(Unauthenticated):
    """An OIDC token that was already exchanged (trusted publishing): request a new one."""

    code = "oidc-token-reused"


class Forbidden(NightwheelsError):
    code = "forbidden"
    status = 403


class NotFound(NightwheelsError):
    code = "not-found"
    status = 404


class Conflict(NightwheelsError):
    code = "conflict"
    status = 409


class RateLimited(NightwheelsError):
    code = "rate-limited"
    status = 429


class StorageFull(NightwheelsError):
    code = "storage-full"
    status = 507


class Unavailable(NightwheelsError):
    """A service this one depends on (e.g. an OIDC key set) cannot be reached; retry later."""

    code = "unavailable"
    status = 503


class ProjectConfigError(NightwheelsError):
    """The project or the command line cannot be used as given (``nightwheels test`` exit 2)."""

    code = "project-config"
    status = 400


class InstallFailed(NightwheelsError):
    """The test environment could not be built (``nightwheels test`` exit 3)."""

    code = "install-failed"
    status = 502


class IndexUnavailable(InstallFailed):
    """A package index could not be read."""

    code = "index-unavailable"


class TrackerError(NightwheelsError):
    """An issue tracker refused or failed a request."""

    code = "tracker-error"
    status = 502


class Misconfigured(NightwheelsError):
    """A client-side tool lacks something it needs (server, token, files, project settings)."""

    code = "misconfigured"
    status = 400


class BuildFailed(NightwheelsError):
    code = "build-failed"
    status = 400


class TrustedPublishingFailed(NightwheelsError):
    code = "trusted-publishing-failed"
    status = 400


class PruneAborted(NightwheelsError):
    """The retention plan could not be made safely: nothing was removed."""

    code = "prune-aborted"
    status = 409


class StorageUnavailable(Unavailable):
    """The object store or database cannot be reached or refused the operation."""

    code = "storage-unavailable"
    status = 503


class CorruptBlob(NightwheelsError):
    """Stored bytes are missing or do not match their digest (run fsck)."""

    code = "corrupt-blob"
    status = 500
