"""Apply `sql/NNN_*.sql` migrations in order, once each.

Each file runs in its own transaction and is recorded with its checksum in
`schema_migrations`; an advisory lock keeps two runners (two pods starting at
once) from applying the same file twice. Editing a file that was already
applied is refused rather than silently ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg

from userflow.config import Settings

# A checkout's sql/ folder; an installed package (the image) has none and sets UF_SQL_DIR.
REPOSITORY_SQL: Final = Path(__file__).resolve().parents[3] / "sql"
_LOCK_KEY = 0x75666D67  # "ufmg"


class MigrationChanged(RuntimeError):
    """An applied migration's file no longer matches what was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_dir(settings: Settings) -> Path:
    """Where the migrations are: settings.sql_dir (UF_SQL_DIR), or a checkout's sql/ when empty."""
    return Path(settings.sql_dir) if settings.sql_dir else REPOSITORY_SQL


def discover(sql_dir: Path) -> list[Migration]:
    """The migrations in sql_dir (`NNN_*.sql`), in the order they apply."""
    return [Migration(p.stem, p) for p in sorted(sql_dir.glob("[0-9][0-9][0-9]_*.sql"))]


def apply(conninfo: str, sql_dir: Path) -> list[str]:
    """Apply sql_dir's pending migrations; return the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            for migration in discover(sql_dir):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationChanged(
                            f"{migration.path.name} changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
