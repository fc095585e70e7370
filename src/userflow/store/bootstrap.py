"""Making the login roles of UserFlow's processes and Grafana (sql/bootstrap.sql), as a superuser.

`userflow db bootstrap` runs this before `userflow migrate`, on every install
and upgrade; so do `make services` and the chart. Passwords are hashed here
(SCRAM, by libpq) and only the verifier travels, so no password reaches the
server's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from userflow.config import Settings

# The login roles (the processes' and Grafana's data source's), by the name their
# password setting carries.
ROLES: Final = {
    "migrator": "userflow_migrator",
    "consumer": "userflow_consumer",
    "ingest": "userflow_ingest",
    "operator": "userflow_operator",
    "reader": "userflow_reader",
    "dashboards": "userflow_dashboards",
}


def passwords(settings: Settings) -> dict[str, str]:
    """The passwords set (UF_ROLE_PASSWORD_<ROLE>), by role name."""
    found = {role: getattr(settings, f"role_password_{key}") for key, role in ROLES.items()}
    return {role: password for role, password in found.items() if password}


def apply(admin_url: str, sql_dir: Path, role_passwords: Mapping[str, str]) -> list[str]:
    """Run sql/bootstrap.sql in the database of `admin_url`; return the roles given a password."""
    script = (sql_dir / "bootstrap.sql").read_text(encoding="utf-8")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(script.encode())
        for role, password in role_passwords.items():
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(),
                                                     b"scram-sha-256")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())))
    return sorted(role_passwords)
