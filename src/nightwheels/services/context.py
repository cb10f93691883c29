"""The objects every service needs, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nightwheels.config import Settings
from nightwheels.db.engine import Database
from nightwheels.storage import BlobStore, open_store

ChangeListener = Callable[[str, int], None]  # (project name, new serial)


@dataclass
class Services:
    settings: Settings
    db: Database
    store: BlobStore
    listeners: list[ChangeListener] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True) -> Services:
        """``create=False``: make no folder (commands that act on an index that exists)."""
        if create:
            settings.data.mkdir(parents=True, exist_ok=True)
            settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            db=Database(
                settings.database,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
            ),
            store=open_store(
                settings.storage_url,
                public_url=settings.storage_public_url,
                presign_seconds=settings.presign_seconds,
            ),
        )

    def changed(self, project: str, serial: int) -> None:
        """Tell in-process caches that a project changed (after the commit)."""
        for listener in self.listeners:
            listener(project, serial)

    def close(self) -> None:
        self.db.dispose()
