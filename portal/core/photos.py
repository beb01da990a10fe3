"""Uploaded photos: checked by decoding, re-encoded (which drops EXIF and GPS), stored under a
generated name in ``instance/uploads/<year>/``; never served by the name the user gave.

Decoding is the slow part (a second for a large phone photo): it happens in a request hook
that runs before the request's write transaction begins (``init_app``), for the views marked
``@accepts_photos(...)``, so that SQLite's one write lock is never held while a photo decodes.
Services then only store the bytes prepared there (``store_photo``), inside their transaction;
a file stored by a transaction that does not commit is deleted when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import gettext as _
from flask_login import current_user
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.database import begin_write, commit_keeping_loaded
from portal.extensions import db

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 2048
# A phone's main camera takes 12-20 MP (50 MP sensors save 12 MP by default): anything above
# is refused before it is decoded (PHOTO_MAX_PIXELS). A JPEG decodes at a reduced scale (its
# DCT can), about 6 MP for the largest: 24 MB of pixels.
DEFAULT_MAX_PIXELS = 24_000_000
# Images that cannot be decoded at a reduced scale (see _scales_while_decoding) are held whole,
# with copies, while they decode: measured with Pillow 13, a progressive JPEG takes ~7 bytes a
# pixel, a PNG 7 (11 with transparency), a WebP ~17. These caps keep one decode near 64 MB
# and still take a phone's screenshot (2.6-3.7 MP) or a picture forwarded from a chat app.
UNSCALED_MAX_PIXELS = {"JPEG": 9_000_000, "MPO": 9_000_000, "PNG": 6_000_000, "WEBP": 3_000_000}
JPEG_QUALITY = 85
NAME_PATTERN = re.compile(r"^[0-9]{4}/[0-9a-f]{32}\.jpg$")
_PENDING = "photos_stored_in_transaction"
_PREPARED = "prepared_photos"


@dataclass(frozen=True)
class PreparedPhoto:
    """A chosen file, decoded, checked and re-encoded as a JPEG without metadata (``jpeg``),
    or refused (``error``, the message for the form)."""

    filename: str
    jpeg: bytes | None = None
    error: str | None = None


def upload_root() -> Path:
    return Path(current_app.instance_path) / "uploads"


def max_pixels() -> int:
    return int(current_app.config.get("PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def chosen(file: FileStorage | PreparedPhoto | None) -> bool:
    """A file was chosen in the form (a file input left empty sends one without a name)."""
    return file is not None and bool(file.filename)


def _refuse(message: str) -> DomainError:
    return DomainError({"photo": message})


def _too_many_pixels(limit: int) -> DomainError:
    return _refuse(
        _(
            "The photo has too many pixels: at most %(mp)d megapixels. Choose a smaller photo.",
            mp=limit // 1_000_000,
        )
    )


def _read_limited(file_storage: FileStorage, limit: int) -> bytes:
    data = file_storage.stream.read(limit + 1)
    if len(data) > limit:
        raise _refuse(_("The photo is too large: at most %(mb)d MB.", mb=limit // (1024 * 1024)))
    return data


def _output_size(size: tuple[int, int]) -> tuple[int, int]:
    """What ``thumbnail((MAX_SIDE, MAX_SIDE))`` makes of an image of this size."""
    width, height = size
    scale = min(1.0, MAX_SIDE / width, MAX_SIDE / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(data: bytes, limit: int) -> Image.Image:
    """Read the header only (Pillow's open is lazy) and refuse too many pixels before any
    decoding; Pillow's own bomb check (``Image.MAX_IMAGE_PIXELS``) refuses the worst earlier."""
    not_a_photo = _refuse(_("This file is not a photo. Upload a JPEG, PNG or WebP image."))
    try:
        with warnings.catch_warnings():
            # Between MAX_IMAGE_PIXELS and twice that Pillow only warns: refused just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(limit) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise not_a_photo from None
    if not _scales_while_decoding(image):
        limit = min(limit, UNSCALED_MAX_PIXELS.get(image.format or "", 0))
    if image.width * image.height > limit:
        raise _too_many_pixels(limit)
    return image


def _scales_while_decoding(image: Image.Image) -> bool:
    """A baseline JPEG (what phone cameras write). A progressive one is decoded through
    coefficient buffers for the whole image (2 bytes a coefficient: 72 MB at 24 MP), whatever
    the scale; PNG and WebP always decode whole."""
    return image.format in ("JPEG", "MPO") and not image.info.get("progressive")


def _decode(image: Image.Image) -> Image.Image:
    """The pixels, for a JPEG at the smallest scale (1/2, 1/4, 1/8) still at least as large as
    the output: a 24 MP photo then takes 24 MB instead of 96 (Pillow keeps 4 bytes a pixel)."""
    if image.format in ("JPEG", "MPO"):
        image.draft(None, _output_size(image.size))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _refuse(_("This file is not a photo. Upload a JPEG, PNG or WebP image.")) from None
    return image


def _normalised(image: Image.Image) -> Image.Image:
    """At most MAX_SIDE, upright (EXIF orientation applied), RGB on white. Scaled first, so
    that rotating and flattening work on the small image."""
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _under_write_lock() -> bool:
    if db.engine.dialect.name != "sqlite":
        return False
    session = db.session()
    return session.in_transaction() and bool(
        session.connection().get_execution_options().get("sqlite_immediate")
    )


def prepare_photo(file_storage: FileStorage) -> PreparedPhoto:
    """Decode, check and re-encode one uploaded JPEG/PNG/WebP; return the JPEG to store.

    Raises DomainError({"photo": ...}) for a file that is too large, has too many pixels or is
    not such an image, and RuntimeError if called while the request holds SQLite's write lock
    (decode before the write begins: ``accepts_photos``)."""
    if has_request_context() and _under_write_lock():
        raise RuntimeError("a photo decoded under the SQLite write lock")
    limit = current_app.config.get("MAX_PHOTO_BYTES", 10 * 1024 * 1024)
    data = _read_limited(file_storage, limit)
    image = _normalised(_decode(_open(data, max_pixels())))
    del data
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return PreparedPhoto(filename=file_storage.filename or "", jpeg=buffer.getvalue())


def prepare_or_refuse(file_storage: FileStorage) -> PreparedPhoto:
    """``prepare_photo``, a refusal kept as the photo's ``error`` instead of raised."""
    try:
        return prepare_photo(file_storage)
    except DomainError as error:
        return PreparedPhoto(file_storage.filename or "", error=error.errors["photo"])


def store_photo(photo: PreparedPhoto) -> str:
    """Write a prepared photo under a new name; return it (``<year>/<hex>.jpg``, relative to
    the upload folder). Call it inside the unit of work that records the name: if that
    transaction ends without a commit, the file is deleted.

    Raises DomainError({"photo": ...}) for a photo that was refused when it was prepared."""
    if photo.error is not None:
        raise _refuse(photo.error)
    if photo.jpeg is None:
        raise RuntimeError("a photo that was not prepared")
    name = f"{local_today().year:04d}/{secrets.token_hex(16)}.jpg"
    target = upload_root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    # Written aside, then renamed: a reader never sees half a file.
    session = db.session()
    if not session.in_transaction():
        session.begin()  # the file follows the transaction open when it was stored
    temporary.write_bytes(photo.jpeg)
    os.replace(temporary, target)
    session.info.setdefault(_PENDING, []).append(target)
    return name


def photo_path(name: str | None) -> Path:
    """The file of a stored photo. Raises ValueError for any name that store_photo could not
    have generated (so ``../``, absolute paths and other tricks never reach the disk)."""
    if not name or not NAME_PATTERN.fullmatch(name):
        raise ValueError("not a stored photo name")
    root = upload_root().resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError("not a stored photo name")
    return path


def delete_photo(name: str) -> None:
    """Remove a stored photo (one its record no longer names, after the commit)."""
    with contextlib.suppress(ValueError):
        photo_path(name).unlink(missing_ok=True)


# --- stored files follow their transaction ------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _kept(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction) -> None:  # noqa: ANN001
    # A row naming the file exists only once committed: a file whose row was not saved
    # (refused input, a failed commit, an error) would be an orphan.
    if transaction.parent is not None:
        return
    for path in session.info.pop(_PENDING, ()):
        path.unlink(missing_ok=True)


# --- prepared before the write transaction --------------------------------------------------------


def accepts_photos(*fields: str, most: int = 1) -> Callable:
    """Mark a view whose form carries photos in ``fields`` (at most ``most`` each): they are
    decoded before its write transaction begins, and the view takes them from
    ``uploaded_photos``."""

    def mark(view: Callable) -> Callable:
        view.accepts_photos = (fields, most)  # type: ignore[attr-defined]
        return view

    return mark


def uploaded_photos(field: str) -> list[PreparedPhoto]:
    """The photos chosen in ``field`` of this request, as prepared (or refused) before the
    transaction began; a refused one ends the list. RuntimeError for a view not marked."""
    files = [f for f in request.files.getlist(field) if chosen(f)]
    prepared = g.get(_PREPARED, {})
    if files and field not in prepared:
        raise RuntimeError(f"photos of {field!r} not prepared: mark the view @accepts_photos")
    return prepared.get(field, [])


def uploaded_photo(field: str) -> PreparedPhoto | None:
    photos = uploaded_photos(field)
    return photos[0] if photos else None


@contextlib.contextmanager
def _decode_slot():
    """One of PHOTO_DECODE_SLOTS places to decode in, shared by every worker of the instance
    (an exclusive ``flock`` of a file in the instance folder), or None when all are taken.

    Bounds the cores taken by decoding when there are more workers than cores. Never waited
    for: a gunicorn sync worker waiting for a slot serves nobody; the photo is refused
    instead, to be sent again."""
    folder = Path(current_app.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(int(current_app.config.get("PHOTO_DECODE_SLOTS", 1))):
        fd = os.open(folder / f"photo-decode-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield index
        finally:
            os.close(fd)  # closing the descriptor releases its flock
        return
    yield None


def _prepare_all(fields: tuple[str, ...], most: int) -> dict[str, list[PreparedPhoto]]:
    prepared: dict[str, list[PreparedPhoto]] = {}
    for field in fields:
        files = [f for f in request.files.getlist(field) if chosen(f)]
        if len(files) > most:
            # The service refuses the number; nothing is decoded for that.
            prepared[field] = [PreparedPhoto(f.filename or "") for f in files]
            continue
        photos = prepared[field] = []
        for file in files:  # one at a time: the pixels of one are freed before the next
            photos.append(prepare_or_refuse(file))
            if photos[-1].error is not None:
                break
    return prepared


def prepared_before_write() -> bool:
    """This request's photos are decoded before its write transaction begins (a write to a view
    marked ``accepts_photos`` with files chosen): the session hook leaves the lock to
    ``init_app``'s hook."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.files:
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "accepts_photos", None) is not None


def _all_busy(fields: tuple[str, ...]) -> dict[str, list[PreparedPhoto]]:
    busy = _("Many photos are being sent right now. Please send it again in a moment.")
    prepared = {}
    for field in fields:
        files = [f for f in request.files.getlist(field) if chosen(f)]
        if files:
            prepared[field] = [PreparedPhoto(files[0].filename or "", error=busy)]
    return prepared


def init_app(app: Flask) -> None:
    """After the session and policy hooks (the user is signed in and may call the view): decode
    the photos of a view marked ``accepts_photos`` with no transaction open (the reads so far
    are ended, what they loaded stays loaded), then begin the write transaction."""
    # Pillow refuses twice this many pixels at open; the configured limit refuses the rest.
    Image.MAX_IMAGE_PIXELS = int(app.config.get("PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS))

    @app.before_request
    def _prepare_photos_before_the_write():
        if not prepared_before_write() or not current_user.is_authenticated:
            return
        if db.session().in_transaction():
            commit_keeping_loaded()
        fields, most = app.view_functions[request.endpoint].accepts_photos
        with _decode_slot() as slot:
            prepared = _prepare_all(fields, most) if slot is not None else _all_busy(fields)
        g.setdefault(_PREPARED, {}).update(prepared)
        begin_write()
