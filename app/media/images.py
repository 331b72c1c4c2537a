"""Recognising, checking and cleaning uploaded images; no database, no HTTP."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from app import errors

MAX_PIXELS = 40_000_000  # a 40-megapixel phone photo decodes to ~160 MB of RGBA; enough
# EXIF times carry no offset unless OffsetTimeOriginal says so; the phones are in China.
DEFAULT_EXIF_TZ = timezone(timedelta(hours=8))

_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 36867, 36881


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    taken_at: datetime | None
    gps: tuple[float, float] | None  # (lon, lat)


def sniff(head: bytes) -> str | None:
    """The Pillow format name the first bytes announce, if one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def clean(data: bytes) -> CleanImage:
    """Read capture time and GPS from EXIF, then re-encode the pixels without any metadata."""
    fmt = sniff(data[:16])
    if fmt is None:
        raise errors.UnsupportedMediaType("only JPEG, PNG and WebP images are accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise errors.PayloadTooLarge(
                    f"the image is {width}×{height} pixels; at most {MAX_PIXELS} are accepted"
                )
            exif = opened.getexif()
            taken_at, gps = _taken_at(exif), _gps(exif)
            image = ImageOps.exif_transpose(opened)  # keep the picture upright without EXIF
            out = io.BytesIO()
            image.save(out, format=fmt, **_save_options(fmt, image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.PayloadTooLarge("the image decodes to too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise errors.UnsupportedMediaType("the file is not a readable image") from exc
    return CleanImage(out.getvalue(), _FORMATS[fmt], taken_at, gps)


def _save_options(fmt: str, image: Image.Image) -> dict[str, object]:
    options: dict[str, object] = {}
    icc = image.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=90, optimize=True)
    elif fmt == "WEBP":
        options.update(quality=90)
    return options


def _taken_at(exif: Image.Exif) -> datetime | None:
    ifd = exif.get_ifd(_EXIF_IFD)
    raw = ifd.get(_DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = ifd.get(_OFFSET_TIME_ORIGINAL)
    tz = DEFAULT_EXIF_TZ
    if isinstance(offset, str):
        try:
            tz = datetime.strptime(offset.strip("\x00 "), "%z").tzinfo or tz  # type: ignore[assignment]
        except ValueError:
            pass
    return taken.replace(tzinfo=tz).astimezone(UTC)


def _gps(exif: Image.Exif) -> tuple[float, float] | None:
    ifd = exif.get_ifd(_GPS_IFD)
    try:
        lat = _degrees(ifd[2]) * (-1 if str(ifd.get(1, "N")).upper().startswith("S") else 1)
        lon = _degrees(ifd[4]) * (-1 if str(ifd.get(3, "E")).upper().startswith("W") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lon, lat


def _degrees(value: Any) -> float:
    degrees, minutes, seconds = value
    return float(degrees) + float(minutes) / 60 + float(seconds) / 3600
