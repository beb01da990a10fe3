"""portal.core.photos: only real photos are kept, re-encoded without EXIF, under generated names."""

from __future__ import annotations

import io
import os
import re

import pytest
from PIL import ExifTags, Image
from werkzeug.datastructures import FileStorage

from portal.core.errors import DomainError
from portal.core.photos import delete_photo, photo_path, prepare_photo, store_photo


@pytest.fixture(autouse=True)
def _request(app):
    """Messages are translated for a request's language."""
    with app.test_request_context():
        yield


def save_photo(file: FileStorage) -> str:
    return store_photo(prepare_photo(file))


def _upload(data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg"):
    return FileStorage(stream=io.BytesIO(data), filename=filename, content_type=content_type)


def _image_bytes(fmt: str, size=(64, 48), mode="RGB", color="red", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 50.0)
    return _image_bytes("JPEG", exif=exif)


def test_jpeg_with_gps_is_stored_without_exif(app, duty_uploads):
    original = _jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    name = save_photo(_upload(original, "IMG_0001.JPG"))

    assert re.fullmatch(r"\d{4}/[0-9a-f]{32}\.jpg", name)
    path = duty_uploads / name
    assert path.is_file() and photo_path(name) == path.resolve()
    stored = path.read_bytes()
    assert b"Exif" not in stored and b"TestPhone" not in stored
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
        assert image.size == (64, 48)


def test_exif_orientation_is_applied_before_it_is_dropped(app, duty_uploads):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # the camera was turned: show it rotated
    name = save_photo(_upload(_image_bytes("JPEG", size=(64, 48), exif=exif)))
    with Image.open(duty_uploads / name) as image:
        assert image.size == (48, 64)


def test_png_with_transparency_works(app, duty_uploads):
    data = _image_bytes("PNG", mode="RGBA", color=(0, 128, 0, 0))
    name = save_photo(_upload(data, "plan.png", "image/png"))
    with Image.open(duty_uploads / name) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.getpixel((0, 0)) == pytest.approx((255, 255, 255), abs=3)  # on white


def test_webp_works(app, duty_uploads):
    name = save_photo(_upload(_image_bytes("WEBP"), "a.webp", "image/webp"))
    assert (duty_uploads / name).is_file()


def test_large_photo_is_scaled_down(app, duty_uploads):
    name = save_photo(_upload(_image_bytes("JPEG", size=(3000, 1000))))
    with Image.open(duty_uploads / name) as image:
        assert image.size == (2048, 683)


def test_two_uploads_get_different_names(app, duty_uploads):
    data = _image_bytes("PNG")
    assert save_photo(_upload(data)) != save_photo(_upload(data))


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"just some text, not a photo\n" * 20, "evil.jpg", "image/jpeg"),
        (b"", "empty.jpg", "image/jpeg"),
        (_image_bytes("GIF"), "anim.gif", "image/gif"),
        (_image_bytes("BMP"), "photo.jpg", "image/jpeg"),
        (_image_bytes("JPEG")[:200], "truncated.jpg", "image/jpeg"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.png", "image/png"),
    ],
    ids=["text-renamed-jpg", "empty", "gif", "bmp-renamed", "truncated", "svg"],
)
def test_files_that_are_not_accepted_photos_are_refused(
    app, duty_uploads, data, filename, content_type
):
    with pytest.raises(DomainError) as caught:
        save_photo(_upload(data, filename, content_type))
    assert set(caught.value.errors) == {"photo"}
    assert not duty_uploads.exists() or not any(duty_uploads.rglob("*.*"))


def test_upload_over_ten_megabytes_is_refused(app, duty_uploads):
    data = _image_bytes("JPEG") + b"\0" * (11 * 1024 * 1024)
    with pytest.raises(DomainError) as caught:
        save_photo(_upload(data))
    assert "photo" in caught.value.errors
    assert not duty_uploads.exists()


def test_the_limit_comes_from_the_config(app, duty_uploads):
    app.config["MAX_PHOTO_BYTES"] = 1000
    buffer = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(30000)).save(buffer, format="PNG")
    with pytest.raises(DomainError):
        save_photo(_upload(buffer.getvalue()))


def test_too_many_pixels_are_refused_before_decoding(app, duty_uploads):
    data = _image_bytes("PNG", size=(8000, 7000), mode="1", color=0)
    assert len(data) < 10 * 1024 * 1024
    with pytest.raises(DomainError) as caught:
        save_photo(_upload(data, "huge.png", "image/png"))
    assert "photo" in caught.value.errors


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "../../etc/passwd",
        "/etc/passwd",
        "2026/../../../etc/passwd",
        "2026/../2026/" + "a" * 32 + ".jpg",
        "2026/" + "a" * 32 + ".jpg/..",
        "2026\\" + "a" * 32 + ".jpg",
        "2026/" + "A" * 32 + ".jpg",
        "2026/" + "a" * 32 + ".png",
        "2026/" + "a" * 32 + ".jpg\n",
        "./2026/" + "a" * 32 + ".jpg",
    ],
)
def test_unsafe_names_are_refused(app, duty_uploads, name):
    with pytest.raises(ValueError):
        photo_path(name)


def test_delete_photo_removes_the_file_and_ignores_bad_names(app, duty_uploads):
    name = save_photo(_upload(_image_bytes("PNG")))
    delete_photo("../../etc/passwd")
    assert (duty_uploads / name).is_file()
    delete_photo(name)
    assert not (duty_uploads / name).exists()
