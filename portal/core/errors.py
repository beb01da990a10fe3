"""The domain error that services raise and views turn into field messages."""

from __future__ import annotations

from flask_wtf import FlaskForm


class DomainError(Exception):
    """A business rule failed; ``errors`` maps form field names to translated messages.

    The key ``"_"`` carries a message that belongs to no single field.
    """

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors

    def apply_to(self, form: FlaskForm) -> None:
        """Put each message on its field (or on the form) so the page shows it."""
        for name, message in self.errors.items():
            field = getattr(form, name, None) if name != "_" else None
            if field is not None and hasattr(field, "errors"):
                field.errors = [*list(field.errors or []), message]
            else:
                form.form_errors.append(message)
