"""Photos: recognised by their bytes, capped, EXIF read into the record and stripped."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from PIL import Image

from tests.conftest import Harness
from tests.factories import (
    EAST,
    WEST,
    bearer,
    count_rows,
    first_report,
    load_grid,
    login_headers,
    make_user,
    report_body,
)

PROBLEMS = "https://burnban.dev/problems/"


def jpeg_with_exif(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 80, 20))
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[36867] = "2026:11:20 09:45:00"  # local time, UTC+8
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (30.0, 1.0, 12.0)
    gps[3], gps[4] = "E", (120.0, 1.0, 12.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (16, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size).save(out, format="PNG")
    return out.getvalue()


async def _upload(
    h: Harness, headers: dict[str, str], report_id: str, data: bytes, name: str = "a.jpg"
) -> Any:
    files = {"file": (name, data, "image/jpeg")}
    return await h.client.post(f"/api/v1/reports/{report_id}/photos", files=files, headers=headers)


async def test_exif_is_kept_in_the_record_and_stripped_from_the_bytes(harness: Harness) -> None:
    headers, report = await first_report(harness)
    r = await _upload(harness, headers, report["id"], jpeg_with_exif())
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["content_type"] == "image/jpeg"
    assert photo["taken_at"] == "2026-11-20T01:45:00Z"
    assert abs(photo["gps"]["lon"] - (120 + 1 / 60 + 12 / 3600)) < 1e-9
    assert abs(photo["gps"]["lat"] - (30 + 1 / 60 + 12 / 3600)) < 1e-9
    assert r.headers["location"] == photo["url"]
    stored = await harness.client.get(photo["url"], headers=headers)
    assert stored.status_code == 200
    assert stored.headers["content-type"] == "image/jpeg"
    assert len(stored.content) == photo["bytes"]
    assert not Image.open(io.BytesIO(stored.content)).getexif()
    assert b"Exif" not in stored.content
    again = await harness.client.get(f"/api/v1/reports/{report['id']}", headers=headers)
    assert again.json()["photos"] == [photo]


async def test_the_same_bytes_twice_are_one_photo(harness: Harness) -> None:
    headers, report = await first_report(harness)
    first = await _upload(harness, headers, report["id"], png(), "x.png")
    second = await _upload(harness, headers, report["id"], png(), "y.png")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["content_type"] == "image/png"
    assert first.json()["gps"] is None
    assert (await count_rows(harness, "photos"))["photos"] == 1


async def test_types_are_recognised_by_their_bytes(harness: Harness) -> None:
    headers, report = await first_report(harness)
    r = await _upload(harness, headers, report["id"], b"GIF89a" + b"\0" * 100, "fake.jpg")
    assert r.status_code == 415
    assert r.json()["type"] == PROBLEMS + "unsupported-media-type"
    r = await _upload(harness, headers, report["id"], b"\xff\xd8\xff" + b"junk" * 10)
    assert r.status_code == 415
    assert (await count_rows(harness, "photos"))["photos"] == 0


async def test_large_files_and_decompression_bombs_are_refused(harness: Harness) -> None:
    headers, report = await first_report(harness)
    r = await _upload(harness, headers, report["id"], b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024))
    assert r.status_code == 413
    assert r.json()["type"] == PROBLEMS + "payload-too-large"
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")  # tiny file, 100 Mpx
    r = await _upload(harness, headers, report["id"], bomb.getvalue(), "bomb.png")
    assert r.status_code == 413
    assert (await count_rows(harness, "photos"))["photos"] == 0


async def test_only_the_reporter_within_a_day(harness: Harness) -> None:
    await load_grid(harness)
    user = await make_user(harness, "grid_worker")
    r = await harness.client.post(
        "/api/v1/reports", json=report_body(), headers=bearer(harness, user)
    )
    report = r.json()
    officer = await login_headers(harness, "officer", agency_code=WEST)
    r = await _upload(harness, officer, report["id"], png())
    assert r.status_code == 403
    stranger = await login_headers(harness, "officer", agency_code=EAST)
    r = await _upload(harness, stranger, report["id"], png())
    assert r.status_code == 404
    admin = await login_headers(harness, "admin")
    r = await _upload(harness, admin, report["id"], png())
    assert r.status_code == 201
    harness.clock.advance(timedelta(hours=25))
    r = await _upload(harness, bearer(harness, user), report["id"], png((8, 8)))
    assert r.status_code == 403
    assert (await count_rows(harness, "photos"))["photos"] == 1


async def test_photos_are_seen_by_whoever_sees_the_report(harness: Harness) -> None:
    headers, report = await first_report(harness)
    photo = (await _upload(harness, headers, report["id"], png())).json()
    officer = await login_headers(harness, "officer", agency_code=WEST)
    assert (await harness.client.get(photo["url"], headers=officer)).status_code == 200
    stranger = await login_headers(harness, "officer", agency_code=EAST)
    assert (await harness.client.get(photo["url"], headers=stranger)).status_code == 404
