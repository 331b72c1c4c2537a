"""Tests for great-circle distances, search boxes and degree tolerances."""

import math
import random

import pytest

from geo.distance import EARTH_RADIUS_M, bbox_around, haversine_m, metres_to_degrees


def _destination(lon: float, lat: float, bearing_deg: float, d_m: float) -> tuple[float, float]:
    ang = d_m / EARTH_RADIUS_M
    b = math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(ang) + math.cos(p1) * math.sin(ang) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(ang) * math.cos(p1), math.cos(ang) - math.sin(p1) * math.sin(p2)
    )
    return (math.degrees(l2) + 540.0) % 360.0 - 180.0, math.degrees(p2)


def _inside(box: tuple[float, float, float, float], lon: float, lat: float) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def test_haversine_known_distances() -> None:
    assert haversine_m(110.0, 25.0, 110.0, 25.0) == 0.0
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    # Beijing - Shanghai, about 1 067 km.
    d = haversine_m(116.4074, 39.9042, 121.4737, 31.2304)
    assert 1_060_000 < d < 1_075_000
    assert haversine_m(121.4737, 31.2304, 116.4074, 39.9042) == pytest.approx(d)
    assert haversine_m(0.0, 0.0, 180.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


@pytest.mark.parametrize("lat", [0.0, 25.258, 53.0, 75.0, -60.0])
@pytest.mark.parametrize("radius", [1.0, 300.0, 50_000.0])
def test_bbox_contains_every_point_within_radius(lat: float, radius: float) -> None:
    box = bbox_around(110.314, lat, radius)
    for bearing in range(0, 360, 3):
        lon2, lat2 = _destination(110.314, lat, bearing, radius * 0.999999)
        assert _inside(box, lon2, lat2), (bearing, lon2, lat2, box)
    rng = random.Random(5)
    for _ in range(300):
        lon2, lat2 = _destination(110.314, lat, rng.uniform(0, 360), rng.uniform(0, radius))
        assert _inside(box, lon2, lat2)


def test_bbox_is_reasonably_tight() -> None:
    minlon, minlat, maxlon, maxlat = bbox_around(110.314, 25.258, 300.0)
    assert haversine_m(110.314, minlat, 110.314, maxlat) == pytest.approx(600.0, rel=1e-6)
    width = haversine_m(minlon, 25.258, maxlon, 25.258)
    assert 600.0 <= width < 601.0


def test_bbox_near_pole_takes_all_longitudes_and_clamps_latitude() -> None:
    minlon, minlat, maxlon, maxlat = bbox_around(10.0, 89.999, 1000.0)
    assert (minlon, maxlon, maxlat) == (-180.0, 180.0, 90.0)
    assert minlat == pytest.approx(89.999 - 1000 / EARTH_RADIUS_M * 180 / math.pi)
    minlon, minlat, maxlon, maxlat = bbox_around(0.0, -89.9999, 50_000.0)
    assert (minlon, minlat, maxlon) == (-180.0, -90.0, 180.0)


def test_bbox_across_antimeridian_widens_instead_of_wrapping() -> None:
    minlon, _, maxlon, _ = bbox_around(179.9999, 0.0, 1000.0)
    assert (minlon, maxlon) == (-180.0, 180.0)


def test_bbox_refuses_negative_radius() -> None:
    with pytest.raises(ValueError):
        bbox_around(0.0, 0.0, -1.0)


def test_metres_to_degrees_uses_the_longitude_scale() -> None:
    assert metres_to_degrees(1.0, 0.0) == pytest.approx(180 / (math.pi * EARTH_RADIUS_M))
    assert metres_to_degrees(1.0, 60.0) == pytest.approx(2 * metres_to_degrees(1.0, 0.0))
    assert metres_to_degrees(1.0, -60.0) == pytest.approx(metres_to_degrees(1.0, 60.0))
    deg = metres_to_degrees(5.0, 25.258)
    # Spanning that many degrees of longitude covers at least 5 m on the ground.
    assert haversine_m(110.0, 25.258, 110.0 + deg, 25.258) >= 5.0
    assert haversine_m(110.0, 25.258, 110.0, 25.258 + deg) >= 5.0
    assert math.isfinite(metres_to_degrees(1.0, 90.0))
