"""Photo rules: who may add one, content-addressed storage, reading them back."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.incidents import access
from app.incidents.schemas import Point
from app.media import images
from app.media.models import Photo
from app.media.schemas import PhotoOut
from app.reports.models import Report

MAX_PHOTO_BYTES = 10 * 1024 * 1024
ADD_WINDOW = timedelta(hours=24)
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def photo_out(photo: Photo) -> PhotoOut:
    gps = None
    if photo.gps_lon is not None and photo.gps_lat is not None:
        gps = Point(lon=photo.gps_lon, lat=photo.gps_lat)
    return PhotoOut(
        id=photo.id,
        sha256=photo.sha256,
        content_type=photo.content_type,
        bytes=photo.size_bytes,
        url=f"/api/v1/photos/{photo.id}",
        taken_at=photo.taken_at,
        gps=gps,
    )


async def photos_of(session: AsyncSession, report_id: str) -> list[PhotoOut]:
    rows = await session.exec(
        select(Photo).where(Photo.report_id == report_id).order_by(col(Photo.created_at))
    )
    return [photo_out(row) for row in rows]


def check_may_add(principal: Principal, report: Report, now: datetime) -> None:
    """Only the reporter (or an admin) adds photos, within 24 hours of the report."""
    if not (access.is_reporter(principal, report) or principal.is_admin):
        raise errors.Forbidden("only the reporter may add photos to a report")
    if now - report.received_at > ADD_WINDOW:
        raise errors.Forbidden("photos can be added within 24 hours of the report only")


async def add_photo(
    session: AsyncSession, media_dir: Path, report: Report, data: bytes, now: datetime
) -> PhotoOut:
    """Store a cleaned copy of the image; the same image twice is the same photo."""
    if len(data) > MAX_PHOTO_BYTES:
        raise errors.PayloadTooLarge(f"a photo may be at most {MAX_PHOTO_BYTES} bytes")
    image = images.clean(data)
    sha256 = hashlib.sha256(image.data).hexdigest()
    existing = (
        await session.exec(
            select(Photo).where(Photo.report_id == report.id, Photo.sha256 == sha256)
        )
    ).first()
    if existing is not None:
        return photo_out(existing)
    _write_once(path_of(media_dir, sha256, image.content_type), image.data)
    photo = Photo(
        report_id=report.id,
        sha256=sha256,
        content_type=image.content_type,
        size_bytes=len(image.data),
        taken_at=image.taken_at,
        gps_lon=image.gps[0] if image.gps else None,
        gps_lat=image.gps[1] if image.gps else None,
        created_at=now,
    )
    session.add(photo)
    await session.flush()
    return photo_out(photo)


def path_of(media_dir: Path, sha256: str, content_type: str) -> Path:
    """Where the bytes with this hash live: derived from the hash only, never from input."""
    return media_dir / sha256[:2] / sha256[2:4] / (sha256 + _EXTENSIONS[content_type])


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)  # atomic: readers see the whole file or none
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def get_photo(session: AsyncSession, photo_id: str) -> Photo:
    photo = await session.get(Photo, photo_id)
    if photo is None:
        raise errors.NotFound(f"no photo {photo_id!r}")
    return photo
