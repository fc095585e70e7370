"""Apply `sql/NNN_*.sql` migrations in order, once each.

Each file runs in its own transaction and is recorded with its checksum in
`schema_migrations`; an advisory lock keeps two runners (two pods starting at
once) from applying the same file twice. Editing a file that was already
applied is refused rather than silently ignored.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

# The repository's sql/ folder; an installed package (the image) sets UF_SQL_DIR.
SQL_DIR = Path(os.environ.get("UF_SQL_DIR") or Path(__file__).resolve().parents[3] / "sql")
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


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    return [Migration(p.stem, p) for p in sorted(sql_dir.glob("[0-9][0-9][0-9]_*.sql"))]


def apply(conninfo: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
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
