"""Great-circle distances and lon/lat boxes on a spherical Earth."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius

# Box and degree estimates are padded by this factor so float error never makes them
# exclude a point exactly at the radius.
_SAFETY = 1.0 + 1e-9
# Cosine floor for degree conversions at the poles, where a metre spans any longitude.
_MIN_COS = 1e-9


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Ground distance in metres between two WGS-84 points (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bbox_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """(minlon, minlat, maxlon, maxlat) containing every point within radius_m of (lon, lat).

    Near a pole, or when the box would cross the antimeridian, the longitude range widens to
    the whole [-180, 180] rather than wrap: a larger box is safe, a wrapped one is not.
    """
    if radius_m < 0 or not math.isfinite(radius_m):
        raise ValueError("radius_m must be a finite non-negative number")
    ang = radius_m / EARTH_RADIUS_M * _SAFETY
    dlat = math.degrees(ang)
    minlat = max(-90.0, lat - dlat)
    maxlat = min(90.0, lat + dlat)
    cos_lat = math.cos(math.radians(lat))
    ratio = math.sin(min(ang, math.pi / 2)) / cos_lat if cos_lat > _MIN_COS else math.inf
    if minlat <= -90.0 or maxlat >= 90.0 or ang >= math.pi / 2 or ratio >= 1.0:
        return -180.0, minlat, 180.0, maxlat
    # Exact widest longitude offset of a spherical cap (reached north of the centre's
    # parallel), so the box is tight yet covers the whole circle.
    dlon = math.degrees(math.asin(ratio)) * _SAFETY
    minlon, maxlon = lon - dlon, lon + dlon
    if minlon < -180.0 or maxlon > 180.0:
        return -180.0, minlat, 180.0, maxlat
    return minlon, minlat, maxlon, maxlat


def metres_to_degrees(metres: float, lat: float) -> float:
    """The largest number of degrees that `metres` may span at latitude lat.

    Uses the longitude scale (a degree of longitude is never longer than one of latitude),
    so a buffer of this many degrees is at least `metres` wide in every direction.
    """
    cos_lat = max(abs(math.cos(math.radians(lat))), _MIN_COS)
    deg = math.degrees(metres / (EARTH_RADIUS_M * cos_lat)) * _SAFETY
    return min(deg, 360.0)
