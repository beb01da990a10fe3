"""Flask commands: start the portal for a developer, load demo data."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask_migrate import upgrade
from sqlalchemy import func, select

from portal.extensions import db


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(start_command)


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
    click.echo(f"Tongxin is running on http://{host}:{port}/")
    current_app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
