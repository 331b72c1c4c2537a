"""A geometry column that is PostGIS geometry on PostgreSQL and WKB bytes on SQLite."""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SRID = 4326


class GeometryType(TypeDecorator[BaseGeometry]):
    """Shapely geometries in, shapely geometries out, on either database.

    The impl is GeoAlchemy2's Geometry so that GeoAlchemy2's DDL events and alembic helpers see
    a spatial column on PostgreSQL; on SQLite (no SpatiaLite) the column is a plain BLOB of WKB.
    Spatial indexes are created by the migrations (GiST on PostgreSQL, R*Tree on SQLite), not
    implied by the column, so SQLite never gets a useless B-tree over geometry blobs.
    """

    impl = Geometry
    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__(geometry_type=geometry_type, srid=SRID, spatial_index=False)
        self.geometry_type = geometry_type

    def load_dialect_impl(self, dialect: Dialect | None) -> TypeEngine[Any]:
        # GeoAlchemy2 calls this with dialect=None while dispatching DDL events.
        if dialect is not None and dialect.name == "sqlite":
            return dialect.type_descriptor(LargeBinary())
        return self.impl_instance

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return shapely.to_wkb(value)
        return WKBElement(shapely.to_wkb(value), srid=SRID)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return shapely.from_wkb(value)
        return to_shape(value)

    def __repr__(self) -> str:
        return f"GeometryType({self.geometry_type!r})"
