"""Roles and permissions: who may do what to a project. Pure rules, no I/O."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    UPLOADER = "uploader"


class Permission(StrEnum):
    UPLOAD = "upload"  # upload, replace and yank files
    MANAGE = "manage"  # members, publishers, project settings
    REPORT = "report"  # post downstream test results to the compatibility record


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.UPLOAD, Permission.MANAGE}),
    Role.UPLOADER: frozenset({Permission.UPLOAD}),
}

# What a token may be scoped to. ``upload`` tokens are what CI holds; ``manage``
# tokens act for their user on the management API and are never created by default;
# ``report`` tokens let a downstream project's CI post its results against nightlies
# (scoped to the downstream project names, which need not be projects on the index).
TOKEN_PERMISSIONS = frozenset(p.value for p in Permission)


def role_allows(role: Role | str | None, permission: Permission) -> bool:
    if role is None:
        return False
    return permission in ROLE_PERMISSIONS[Role(role)]


def token_allows(
    token_permissions: frozenset[str] | set[str],
    token_projects: frozenset[str] | set[str] | None,
    project: str,
    permission: Permission,
) -> bool:
    """A token's own scope; the user's role is checked separately.

    ``token_projects`` of ``None`` means the token is not restricted to projects
    (only management tokens can be); upload tokens always name their projects.
    """
    if permission.value not in token_permissions:
        return False
    return token_projects is None or project in token_projects


def scope_within(
    parent_projects: frozenset[str] | set[str] | None, child_projects: set[str] | None
) -> bool:
    """A token created by another token may not reach further than its creator.

    ``None`` means "any project"; only an unscoped parent may create an unscoped child.
    """
    if parent_projects is None:
        return True
    return child_projects is not None and child_projects <= parent_projects
