"""Request size limits that also hold for urlencoded forms, and form text the database can keep.

Werkzeug applies MAX_FORM_MEMORY_SIZE and MAX_FORM_PARTS to multipart bodies only; a
urlencoded form is read whole, up to MAX_CONTENT_LENGTH (sized for photos). Here a urlencoded
body is held to MAX_FORM_MEMORY_SIZE and its fields to MAX_FORM_PARTS: both answer 413.
A NUL character in a form value answers 400: PostgreSQL cannot store it in text (a 500 there).
"""

from __future__ import annotations

from typing import IO, Any

from flask import Flask, Request, render_template
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

URLENCODED = "application/x-www-form-urlencoded"


class UnstorableText(BadRequest):
    """A form value holds a character no column can store."""


class LimitedFormDataParser(FormDataParser):
    def _parse_urlencoded(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> Any:
        result = super()._parse_urlencoded(stream, mimetype, content_length, options)
        parts = self.max_form_parts
        if parts is not None and sum(1 for _ in result[1].items(multi=True)) > parts:
            raise RequestEntityTooLarge()
        return result

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        result = super().parse(*args, **kwargs)
        if any("\x00" in value for _key, value in result[1].items(multi=True)):
            raise UnstorableText()
        return result


class LimitedRequest(Request):
    """A request whose urlencoded body may not exceed the form-memory limit."""

    form_data_parser_class = LimitedFormDataParser

    @property
    def max_content_length(self) -> int | None:
        limit = super().max_content_length
        if self._max_content_length is None and self.mimetype == URLENCODED:
            form_limit = self.max_form_memory_size
            if form_limit is not None:
                return form_limit if limit is None else min(limit, form_limit)
        return limit

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def init_app(app: Flask) -> None:
    app.request_class = LimitedRequest

    @app.errorhandler(UnstorableText)
    def unstorable(_error):
        message = _("The form holds a character that cannot be saved (NUL). Please retype it.")
        return render_template("errors/error.html", title=_("Bad request"), message=message), 400
