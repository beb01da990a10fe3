"""Flask commands of this domain (registered by portal.cli)."""

from __future__ import annotations

from datetime import date

import click
from flask import Flask

from portal.extensions import db


@click.command("generate-shifts")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Local date to count the horizon from (default: today in Asia/Shanghai).",
)
def generate_shifts_command(today) -> None:
    """Create every series' occurrences up to the horizon (SERIES_HORIZON_DAYS).

    Safe to run from cron as often as wanted: existing occurrences are never duplicated.
    """
    from portal.patrols.scheduling import extend_all_series

    if db.engine.dialect.name == "sqlite" and not db.session().in_transaction():
        # A unit of work that writes takes SQLite's write lock up front (see database.py).
        db.session.connection(execution_options={"sqlite_immediate": True})
    day: date | None = today.date() if today else None
    created = extend_all_series(day)
    db.session.commit()
    click.echo(f"{created} shifts generated.")


def register(app: Flask) -> None:
    """Add this domain's commands to ``app.cli``."""
    app.cli.add_command(generate_shifts_command)
