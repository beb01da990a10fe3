"""Flask commands: start the portal for a developer, load demo data."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.serving import run_simple

from portal.extensions import db


def init_app(app: Flask) -> None:
    from portal.help import cli as help_cli
    from portal.notifications import cli as notifications_cli
    from portal.patrols import cli as patrols_cli

    patrols_cli.register(app)
    notifications_cli.register(app)
    help_cli.register(app)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(seed_bench_command)
    app.cli.add_command(start_command)
    app.cli.add_command(create_community_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(prune_idempotency_keys_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


def _database_is_empty() -> bool:
    from portal.places.models import Community

    return db.session.scalar(select(func.count(Community.id))) == 0


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo communities, places, people and accounts (only into an empty database)."""
    from portal.demo import seed_demo

    if not _database_is_empty():
        click.echo("The database already holds data; demo data not loaded.")
        return
    seed_demo()
    db.session.commit()
    click.echo("Demo data loaded. Every demo account's password is tongxin-demo.")


@click.command("seed-bench")
@click.option("--scale", type=click.Choice(["small", "city"]), default="small", show_default=True)
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day the data set stands at (default: today, UTC).",
)
def seed_bench_command(scale: str, today) -> None:  # noqa: ANN001
    """Build the synthetic city for the load benchmark (only into an empty database)."""
    import time as _time

    from portal.seed_bench import NotEmpty, seed_bench

    started = _time.perf_counter()
    try:
        counts = seed_bench(scale, today.date() if today else None)
    except NotEmpty as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    elapsed = _time.perf_counter() - started
    for table, count in counts.items():
        click.echo(f"{table:16} {count:>10,}")
    click.echo(f"{'total':16} {sum(counts.values()):>10,}")
    click.echo(
        f"seed-bench --scale {scale}: {elapsed:.1f} s."
        " Password of every bench account: tongxin-bench."
    )


@click.command("start")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def start_command(host: str, port: int) -> None:
    """Apply migrations, load demo data into an empty database, and serve the portal."""
    from portal.demo import seed_demo

    upgrade()
    if _database_is_empty():
        seed_demo()
        db.session.commit()
        click.echo("Demo data loaded. Every demo account's password is tongxin-demo.")
    db.session.remove()
    app = current_app._get_current_object()
    if not os.environ.get("PUBLIC_URL"):
        # Absolute links (QR codes, calendar feeds) point where this server answers; on all
        # interfaces that is not one address: set PUBLIC_URL to the one phones use.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        app.config["PUBLIC_URL"] = f"http://{shown}:{port}"
    click.echo(f"Tongxin is running on http://{host}:{port}/ (links: {app.config['PUBLIC_URL']})")
    # app.run() is ignored inside a `flask` command, so serve with Werkzeug directly.
    run_simple(host, port, app, threaded=True)


@click.command("create-community")
@click.option("--subdistrict", "subdistrict_name", required=True, help="Created if missing.")
@click.option("--name", required=True)
def create_community_command(subdistrict_name: str, name: str) -> None:
    """Create a community (and its subdistrict if new): the first step of a real deployment."""
    from portal.help.catalogue import seed_catalogue
    from portal.places.models import Community, Subdistrict

    subdistrict = db.session.scalar(select(Subdistrict).where(Subdistrict.name == subdistrict_name))
    if subdistrict is None:
        subdistrict = Subdistrict(name=subdistrict_name)
        db.session.add(subdistrict)
        db.session.flush()
    exists = db.session.scalar(
        select(Community.id).where(
            Community.subdistrict_id == subdistrict.id, Community.name == name
        )
    )
    if exists:
        raise click.ClickException(f"community {name!r} already exists (id {exists})")
    community = Community(subdistrict_id=subdistrict.id, name=name)
    db.session.add(community)
    db.session.flush()
    seed_catalogue(community.id)  # the default request categories
    db.session.commit()
    click.echo(f"Community {community.name} created with id {community.id}.")


@click.command("create-user")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["secretary", "grid_worker", "subdistrict_admin"]),
    required=True,
)
@click.option("--community", "community_name", help="Community name (secretary, grid worker).")
@click.option("--subdistrict", "subdistrict_name", help="Subdistrict name (subdistrict admin).")
@click.option("--name", "person_name", help="The person's real name.")
@click.option("--phone", default=None)
@click.password_option()
def create_user_command(
    username: str,
    role: str,
    community_name: str | None,
    subdistrict_name: str | None,
    person_name: str | None,
    phone: str | None,
    password: str,
) -> None:
    """Create a staff account (the first secretary or subdistrict admin of a deployment)."""
    from portal.auth.models import User
    from portal.auth.passwords import password_problem
    from portal.auth.services import phone_taken, username_taken
    from portal.core.validators import PHONE_RE
    from portal.people.models import Person
    from portal.places.models import Community, Subdistrict

    if username_taken(username):
        raise click.ClickException("this username is taken")
    problem = password_problem(password, username=username, phone=phone)
    if problem:
        raise click.ClickException(f"password refused: {problem}")
    if phone and (not PHONE_RE.match(phone) or phone_taken(phone)):
        raise click.ClickException("the phone number is malformed or already registered")
    user = User(username=username, role=role)
    if role == "subdistrict_admin":
        subdistrict = db.session.scalar(
            select(Subdistrict).where(Subdistrict.name == (subdistrict_name or ""))
        )
        if subdistrict is None:
            raise click.ClickException("--subdistrict must name an existing subdistrict")
        user.subdistrict_id = subdistrict.id
    else:
        community = db.session.scalar(
            select(Community).where(Community.name == (community_name or ""))
        )
        if community is None:
            raise click.ClickException("--community must name an existing community")
        user.community_id = community.id
        user.person = Person(
            community_id=community.id, name=person_name or username, phone=phone or None
        )
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"User {username} ({role}) created.")


@click.command("prune-idempotency-keys")
def prune_idempotency_keys_command() -> None:
    """Delete Idempotency-Keys older than 24 hours: safe to run from cron as often as wanted."""
    from portal.trust.idempotency import prune_expired

    count = prune_expired()
    db.session.commit()
    click.echo(f"{count} expired idempotency keys deleted.")


@click.command("backup")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="The backup file (default: instance/backups/tongxin-<UTC time>.<sqlite|dump>).",
)
def backup_command(output: str | None) -> None:
    """A consistent copy of the database while the portal runs (SQLite backup API, pg_dump)."""
    from portal.trust.backup import BackupError, backup

    db.session.remove()
    try:
        path = backup(db.engine, output, current_app.instance_path)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backup written to {path}")


@click.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the current database's contents.")
def restore_command(backup_file: str, yes: bool) -> None:
    """Bring back a backup made by `flask backup`; refuses to overwrite data without --yes."""
    from portal.trust.backup import BackupError, restore

    db.session.remove()
    try:
        restore(db.engine, backup_file, overwrite=yes)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {backup_file}")
