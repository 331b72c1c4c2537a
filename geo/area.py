"""Areas on the ellipsoid, for cells whose boundaries are in WGS-84 degrees."""

from __future__ import annotations

from pyproj import Geod
from shapely.geometry.base import BaseGeometry

_WGS84 = Geod(ellps="WGS84")


def area_km2(geometry: BaseGeometry) -> float:
    """Geodesic area of a (multi)polygon in square kilometres."""
    area, _perimeter = _WGS84.geometry_area_perimeter(geometry)
    return abs(float(area)) / 1_000_000
