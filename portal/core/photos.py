"""Uploaded photos: checked by decoding, re-encoded (which drops EXIF and GPS), stored under a
generated name in ``instance/uploads/<year>/``; never served by the name the user gave."""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from portal.core.errors import DomainError
from portal.core.timeutil import local_today

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 2048
# Decoding a 20,000 x 20,000 "photo" would take gigabytes: refuse before decoding.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85
NAME_PATTERN = re.compile(r"^[0-9]{4}/[0-9a-f]{32}\.jpg$")


def upload_root() -> Path:
    return Path(current_app.instance_path) / "uploads"


def _refuse(message: str) -> DomainError:
    return DomainError({"photo": message})


def _read_limited(file_storage: FileStorage, limit: int) -> bytes:
    data = file_storage.stream.read(limit + 1)
    if len(data) > limit:
        raise _refuse(_("The photo is too large: at most %(mb)d MB.", mb=limit // (1024 * 1024)))
    return data


def _decode(data: bytes) -> Image.Image:
    not_a_photo = _refuse(_("This file is not a photo. Upload a JPEG, PNG or WebP image."))
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        if image.width * image.height > MAX_PIXELS:
            raise _refuse(_("The photo has too many pixels. Take a smaller one."))
        image.load()
    except DomainError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise not_a_photo from None
    return image


def _normalised(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied), at most MAX_SIDE, RGB on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def save_photo(file_storage: FileStorage) -> str:
    """Store an uploaded JPEG/PNG/WebP as a fresh JPEG without metadata; return its name
    (``<year>/<hex>.jpg``, relative to the upload folder).

    Raises DomainError({"photo": ...}) for a file that is too large or is not such an image.
    """
    limit = current_app.config.get("MAX_PHOTO_BYTES", 10 * 1024 * 1024)
    data = _read_limited(file_storage, limit)
    image = _normalised(_decode(data))
    name = f"{local_today().year:04d}/{secrets.token_hex(16)}.jpg"
    target = upload_root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    # Written aside, then renamed: a reader never sees half a file.
    image.save(temporary, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    os.replace(temporary, target)
    return name


def photo_path(name: str | None) -> Path:
    """The file of a stored photo. Raises ValueError for any name that save_photo could not
    have generated (so ``../``, absolute paths and other tricks never reach the disk)."""
    if not name or not NAME_PATTERN.fullmatch(name):
        raise ValueError("not a stored photo name")
    root = upload_root().resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError("not a stored photo name")
    return path


def delete_photo(name: str) -> None:
    """Remove a stored photo (used when the record that would own it was not saved)."""
    with contextlib.suppress(ValueError):
        photo_path(name).unlink(missing_ok=True)
