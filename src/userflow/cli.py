"""The `userflow` command: a thin shell over the package's functions."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from userflow.config import settings
from userflow.identity import TIERS

app = typer.Typer(help="UserFlow: self-hosted user-behaviour analytics.", no_args_is_help=True)
tenant = typer.Typer(help="Manage tenants (companies) and their keys.", no_args_is_help=True)
app.add_typer(tenant, name="tenant")
db = typer.Typer(help="The database's roles and schema.", no_args_is_help=True)
app.add_typer(db, name="db")


# The choices typer offers, from the one list of tiers.
TierOption = Enum("TierOption", {tier: tier for tier in TIERS}, type=str)  # type: ignore[misc]


@app.command()
def migrate() -> None:
    """Apply the sql/ migrations in order (idempotent)."""
    from userflow.store.migrate import MigrationChanged, apply, migrations_dir

    try:
        applied = apply(settings().database_url_for("migrate"), migrations_dir(settings()))
    except (psycopg.Error, MigrationChanged) as exc:
        typer.echo(f"error: {str(exc).strip()}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@db.command("bootstrap")
def db_bootstrap(
    admin_url: Annotated[str | None, typer.Option(
        help="A superuser's URL to the UserFlow database (default: UF_ADMIN_DATABASE_URL)")] = None,
) -> None:
    """Create or update the processes' PostgreSQL roles (sql/bootstrap.sql); run before migrate.

    Each role's password comes from UF_ROLE_PASSWORD_<MIGRATOR|CONSUMER|INGEST|OPERATOR|READER|DASHBOARDS>
    when set.
    """
    from userflow.store import bootstrap
    from userflow.store.migrate import migrations_dir

    url = admin_url or settings().admin_database_url
    if not url:
        typer.echo("error: give --admin-url or set UF_ADMIN_DATABASE_URL (a superuser)", err=True)
        raise typer.Exit(2)
    try:
        with_password = bootstrap.apply(url, migrations_dir(settings()),
                                        bootstrap.passwords(settings()))
    except psycopg.Error as exc:
        typer.echo(f"error: {str(exc).strip()}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"roles in place: {', '.join(bootstrap.ROLES.values())}"
               f"; passwords set: {', '.join(with_password) or 'none'}")


@tenant.command("create")
def tenant_create(
    name: Annotated[str, typer.Option(help="Company name")],
    tier: Annotated[TierOption, typer.Option(help="Subscription tier")] = TierOption("free"),
    slug: Annotated[str | None, typer.Option(help="Short name for topics; from the name")] = None,
    retention_days: Annotated[int, typer.Option(min=1, max=3650)] = 90,
    legacy_keyless: Annotated[bool, typer.Option(
        help="Let the seed's /send_event clients send by company_id without a key")] = False,
) -> None:
    """Create a company with a write key and a read key; prints JSON (keys are shown once)."""
    from userflow.identity import InvalidIdentity
    from userflow.store import tenants

    with psycopg.connect(settings().database_url_for("operator")) as conn:
        try:
            made = tenants.create(conn, name, tier.value, slug=slug,
                                  retention_days=retention_days,
                                  legacy_keyless_ingest=legacy_keyless)
        except (tenants.TenantExists, InvalidIdentity) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps(made.as_json()))


@tenant.command("revoke-key")
def tenant_revoke_key(key: Annotated[str, typer.Argument(help="The key to revoke")]) -> None:
    """Revoke a write or read key; the ingest stops accepting it at once."""
    from userflow.store import tenants

    with psycopg.connect(settings().database_url_for("operator")) as conn:
        if not tenants.revoke_key(conn, key):
            typer.echo("error: no such live key", err=True)
            raise typer.Exit(1)
    typer.echo("revoked")


@app.command()
def ingest(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    workers: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Run the ingest API (gunicorn + uvicorn workers)."""
    from userflow.ingest.server import serve

    serve(settings(), host, port, workers)


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Run the query API (read keys; /v1/analytics/...), gunicorn + uvicorn workers."""
    from userflow.ingest.server import serve

    s = settings()
    serve(s, host, port, workers, "userflow.api.app:create_app", s.api_metrics_port)


@app.command()
def consume(processes: Annotated[int, typer.Option(min=1)] = 1) -> None:
    """Run the Kafka → PostgreSQL consumer group."""
    from userflow.consumer import run

    run(settings(), processes)


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="Ingest base URL, e.g. http://127.0.0.1:8080")],
    key: Annotated[str, typer.Option(help="Write key")],
    events: Annotated[int, typer.Option(min=1)] = 10_000,
    rate: Annotated[float | None, typer.Option(help="Events per second; unlimited if unset")] = None,
    seed: Annotated[int, typer.Option()] = 1,
    truth: Annotated[Path | None, typer.Option(help="Write the planted figures here")] = None,
    single: Annotated[bool, typer.Option(help="One event per request instead of batches")] = False,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Send realistic traffic: users, sessions, a funnel, an experiment, bots."""
    from rich.console import Console

    from userflow import simulate as sim

    generated = sim.generate(events, seed)
    if truth:
        truth.write_text(generated.truth.to_json())
    report = sim.send(generated, url, key, rate=rate, single=single, concurrency=concurrency)
    Console(stderr=True).print(sim.report_table(report))
    if report.rejected or report.accepted != events:
        sys.exit(1)


@app.command()
def operator(
    health_port: Annotated[int, typer.Option(help="Port of the liveness endpoint /healthz; 0 for none")] = 8081,
    all_namespaces: Annotated[bool, typer.Option(
        "--all-namespaces", help="Serve Companies in every namespace")] = False,
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", help="Serve Companies in this namespace (repeatable)")] = None,
) -> None:
    """Run the Company operator (kopf): each Company resource becomes a tenant."""
    if all_namespaces == bool(namespace):
        typer.echo("error: give either --all-namespaces or --namespace NS (one or more)", err=True)
        raise typer.Exit(2)
    from userflow.operator.run import run

    run(settings(), namespaces=namespace or (), clusterwide=all_namespaces,
        health_port=health_port or None)


class Transport(str, Enum):
    stdio = "stdio"
    http = "http"


@app.command("mcp")
def mcp_server(
    transport: Annotated[Transport, typer.Option(
        help="stdio (Claude Desktop; the read key from UF_READ_KEY) or http (streamable HTTP at "
             "/mcp; a read key per request: Authorization: Bearer <read key>)")] = Transport.stdio,
    host: Annotated[str, typer.Option(help="HTTP: the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: the port")] = 8765,
) -> None:
    """Run the AI analyst's MCP server: the analytics as tools, read-only, one tenant per key."""
    from psycopg_pool import PoolTimeout

    from userflow.ai import mcp_server as server
    from userflow.analytics.errors import NotAuthorized

    s = settings()
    if transport is Transport.http:
        server.serve_http(s, host, port)
        return
    if not s.read_key:
        typer.echo("error: set UF_READ_KEY to the tenant's read key", err=True)
        raise typer.Exit(2)
    try:
        server.serve_stdio(s)
    except NotAuthorized as exc:
        typer.echo(f"error: UF_READ_KEY is not a live read key ({exc})", err=True)
        raise typer.Exit(1) from None
    except (psycopg.OperationalError, PoolTimeout) as exc:
        typer.echo(f"error: the database is unavailable ({str(exc).strip()})", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
