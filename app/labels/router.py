"""HTTP route of the labels: what each code answers carry means, in the caller's language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from app import i18n
from app.categories import service as categories_service
from app.deps import SessionDep

router = APIRouter(tags=["labels"])

# English names of the categories a new database has; others are labelled by their name.
_CATEGORY_NAMES = {"open_burning": "Open burning", "cured_meat_smoking": "Cured-meat smoking"}


class Labels(BaseModel):
    language: str = Field(description="The language of the labels: en or zh-CN")
    statuses: dict[str, str]
    actions: dict[str, str]
    roles: dict[str, str]
    assignment_roles: dict[str, str]
    outcomes: dict[str, str]
    penalty_kinds: dict[str, str]
    categories: dict[str, str]


@router.get("/labels", operation_id="get_labels", response_model=Labels)
async def get_labels(
    session: SessionDep,
    response: Response,
    accept_language: Annotated[
        str | None, Header(description="zh-CN for Chinese labels; English by default")
    ] = None,
) -> Labels:
    """Labels of incident statuses, actions, roles, outcomes and categories, by code."""
    locale = i18n.locale_of(accept_language)
    categories = await categories_service.list_categories(session)
    names = {
        c.code: c.name if locale != i18n.ENGLISH else _CATEGORY_NAMES.get(c.code, c.name)
        for c in categories
    }
    response.headers["Content-Language"] = i18n.CONTENT_LANGUAGE[locale]
    return Labels(language=i18n.CONTENT_LANGUAGE[locale], categories=names, **i18n.labels(locale))
