"""Flask commands of this domain (registered by portal.cli)."""

from __future__ import annotations

import click
from flask import Flask

from portal.extensions import db


@click.command("escalate-overdue")
def escalate_overdue_command() -> None:
    """Escalate overdue requests (督办): safe to run from cron as often as wanted."""
    from portal.help.actions import escalate_overdue

    if db.engine.dialect.name == "sqlite" and not db.session().in_transaction():
        # This unit of work writes: take SQLite's write lock up front (see database.py).
        db.session.connection(execution_options={"sqlite_immediate": True})
    made = escalate_overdue()
    db.session.commit()
    click.echo(f"{made} escalation(s) made.")


def register(app: Flask) -> None:
    """Add this domain's commands to ``app.cli``."""
    app.cli.add_command(escalate_overdue_command)
