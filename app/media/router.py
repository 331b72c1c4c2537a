"""HTTP routes for photos."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Response, UploadFile
from fastapi.responses import FileResponse

from app import errors
from app.bodylimit import body_limited_route
from app.crsout import answer_crs
from app.deps import ClockDep, CurrentPrincipal, SessionDep, SettingsDep
from app.media import service
from app.media.schemas import PhotoOut
from app.reports import service as report_service

# The file may be 10 MiB; the multipart envelope around it gets a little more.
router = APIRouter(
    tags=["photos"], route_class=body_limited_route(service.MAX_PHOTO_BYTES + 64 * 1024)
)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "/reports/{report_id}/photos",
    operation_id="add_report_photo",
    status_code=201,
    dependencies=[Depends(answer_crs)],
    response_model=PhotoOut,
    responses={413: _PROBLEM, 415: _PROBLEM},
    openapi_extra={
        "requestBody": {
            "content": {"multipart/form-data": {"example": {"file": "(the image's bytes)"}}}
        }
    },
)
async def add_photo(
    report_id: str,
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP image, at most 10 MiB")],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    principal: CurrentPrincipal,
) -> PhotoOut:
    """Attach a photo to a report; EXIF time and GPS are kept in the record, not the file."""
    report = await report_service.visible_report(session, principal, report_id)
    service.check_may_add(principal, report, clock.now())
    data = await file.read(service.MAX_PHOTO_BYTES + 1)
    photo = await service.add_photo(session, settings.media_dir, report, data, clock.now())
    response.headers["Location"] = photo.url
    return photo


@router.get(
    "/photos/{photo_id}",
    operation_id="get_photo",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
async def get_photo(
    photo_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> FileResponse:
    """The photo's bytes, to whoever may see its report."""
    photo = await service.get_photo(session, photo_id)
    try:
        await report_service.visible_report(session, principal, photo.report_id)
    except errors.NotFound:
        raise errors.NotFound(f"no photo {photo_id!r}") from None
    path = service.path_of(settings.media_dir, photo.sha256, photo.content_type)
    if not path.exists():
        raise errors.NotFound(f"the bytes of photo {photo_id!r} are missing")
    return FileResponse(path, media_type=photo.content_type)
