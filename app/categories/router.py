"""HTTP routes for categories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.categories import service
from app.categories.schemas import CategoryIn, CategoryOut
from app.deps import AdminDep, AnyUserDep, ClockDep, SessionDep

router = APIRouter(tags=["categories"])


@router.get("/categories", operation_id="list_categories", response_model=list[CategoryOut])
async def list_categories(session: SessionDep, _: AnyUserDep) -> list[CategoryOut]:
    """Every category with its routing rule, time limits and merge rule."""
    return [service.to_schema(row) for row in await service.list_categories(session)]


@router.get("/categories/{code}", operation_id="get_category", response_model=CategoryOut)
async def get_category(code: str, session: SessionDep, _: AnyUserDep) -> CategoryOut:
    """One category with its rules; what it answers may be put back as it is."""
    return service.to_schema(await service.get_category(session, code))


@router.put(
    "/categories/{code}",
    operation_id="put_category",
    response_model=CategoryOut,
    responses={201: {"model": CategoryOut, "description": "Created"}},
)
async def put_category(
    code: Annotated[str, Path(pattern=service.CODE_PATTERN)],
    data: CategoryIn,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    actor: AdminDep,
) -> CategoryOut:
    """Create or replace a category (201 when created)."""
    category, created = await service.put_category(session, code, data, actor, clock.now())
    if created:
        response.status_code = 201
    return service.to_schema(category)
