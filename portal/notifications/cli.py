"""Flask commands of this domain (registered by portal.cli)."""

from __future__ import annotations

import click
from flask import Flask

from portal.extensions import db


def register(app: Flask) -> None:
    """Add this domain's commands to ``app.cli``."""
    app.cli.add_command(send_reminders_command)


@click.command("send-reminders")
def send_reminders_command() -> None:
    """Extend recurring series, create due shift reminders (24 h and 2 h before), and flag
    household help visits that nobody checked in to (to the grid's workers).

    Safe to run from cron every few minutes: each reminder and each missed-visit flag is stored
    exactly once, and a series never gets an occurrence twice.
    """
    from portal.care.services import flag_missed_visits
    from portal.core.timeutil import now_utc, to_local
    from portal.notifications.services import send_reminders
    from portal.patrols.scheduling import extend_all_series

    if db.engine.dialect.name == "sqlite" and not db.session().in_transaction():
        # This unit of work writes: take SQLite's write lock up front (see database.py).
        db.session.connection(execution_options={"sqlite_immediate": True})
    now = now_utc()
    # Series first, so that a freshly generated occurrence starting soon is reminded too.
    generated = extend_all_series(to_local(now).date(), now=now)
    created = send_reminders(now)
    missed = flag_missed_visits(now)
    db.session.commit()
    click.echo(
        f"{created} reminder(s) created; {generated} shift(s) generated from series; "
        f"{missed} missed help visit(s) flagged."
    )
