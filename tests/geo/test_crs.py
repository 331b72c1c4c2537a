"""Tests for the WGS-84 / GCJ-02 / BD-09 conversions."""

import math
import random
from collections.abc import Callable

import pytest

from geo.crs import (
    SUPPORTED_CRS,
    bd09_to_gcj02,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)

# Published pairs, independent of this code:
# - wandergis/coordtransform (npm "coordtransform"), test/app.js, input (116.404, 39.915):
#   wgs84togcj02 -> [116.41024449916938, 39.91640428150164],
#   gcj02tobd09 -> [116.41036949371029, 39.92133699351021].
# - hujiulong/gcoord, test/unit/crs/GCJ02.spec.js: GCJ02 -> BD09 of (123, 45) is
#   (123.00636499, 45.00636899); GCJ02 -> WGS84 of (123, 45) is (122.99395597, 44.99804071)
#   to 5 decimals.
# - Jun Cai's R package "geoChina", tests: WGS (116.39089, 39.90734) near Tiananmen ->
#   GCJ (116.39713094, 39.90874107).

Fn = Callable[[float, float], tuple[float, float]]


def _random_points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(73.6, 134.7), rng.uniform(18.2, 53.5)) for _ in range(n)]


def test_wgs84_to_gcj02_matches_published_values() -> None:
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-12)
    assert lat == pytest.approx(39.91640428150164, abs=1e-12)
    lon, lat = wgs84_to_gcj02(116.39089, 39.90734)
    assert (round(lon, 8), round(lat, 8)) == (116.39713094, 39.90874107)


def test_gcj02_to_bd09_matches_published_values() -> None:
    lon, lat = gcj02_to_bd09(116.404, 39.915)
    assert lon == pytest.approx(116.41036949371029, abs=1e-12)
    assert lat == pytest.approx(39.92133699351021, abs=1e-12)
    lon, lat = gcj02_to_bd09(123.0, 45.0)
    assert (lon, lat) == pytest.approx((123.00636499, 45.00636899), abs=1e-8)


def test_gcj02_to_wgs84_matches_published_value_to_five_decimals() -> None:
    lon, lat = gcj02_to_wgs84(123.0, 45.0)
    assert (round(lon, 5), round(lat, 5)) == (122.99396, 44.99804)


def test_offset_is_hundreds_of_metres_in_beijing() -> None:
    lon, lat = wgs84_to_gcj02(116.397128, 39.916527)
    dx = (lon - 116.397128) * 111_195 * math.cos(math.radians(lat))
    dy = (lat - 39.916527) * 111_195
    assert 300 < math.hypot(dx, dy) < 800


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [(wgs84_to_gcj02, gcj02_to_wgs84), (gcj02_to_bd09, bd09_to_gcj02)],
)
def test_iterative_inverse_round_trips_to_1e9_degrees(forward: Fn, inverse: Fn) -> None:
    worst_fwd = worst_back = 0.0
    for lon, lat in _random_points(3000, seed=7):
        flon, flat = forward(*inverse(lon, lat))
        worst_fwd = max(worst_fwd, abs(flon - lon), abs(flat - lat))
        blon, blat = inverse(*forward(lon, lat))
        worst_back = max(worst_back, abs(blon - lon), abs(blat - lat))
    assert worst_fwd < 1e-9
    assert worst_back < 1e-9


def test_one_step_inverse_would_not_be_good_enough() -> None:
    # Why the inverse iterates: the textbook one-step inverse misses by metres.
    worst_naive = 0.0
    for lon, lat in _random_points(500, seed=3):
        glon, glat = wgs84_to_gcj02(lon, lat)
        naive = (2 * lon - glon, 2 * lat - glat)
        back = wgs84_to_gcj02(*naive)
        worst_naive = max(worst_naive, abs(back[0] - lon), abs(back[1] - lat))
    assert worst_naive > 1e-6  # ~0.1 m or more


@pytest.mark.parametrize("crs", SUPPORTED_CRS)
def test_to_and_from_wgs84_round_trip(crs: str) -> None:
    for lon, lat in _random_points(500, seed=11):
        there = from_wgs84(lon, lat, crs)
        back = to_wgs84(*there, crs)
        assert back == pytest.approx((lon, lat), abs=1e-9)
        again = from_wgs84(*to_wgs84(lon, lat, crs), crs)
        assert again == pytest.approx((lon, lat), abs=1e-9)


def test_wgs84_is_identity_and_bd09_composes() -> None:
    assert to_wgs84(110.3, 25.2, "wgs84") == (110.3, 25.2)
    assert from_wgs84(110.3, 25.2, "bd09") == gcj02_to_bd09(*wgs84_to_gcj02(110.3, 25.2))


@pytest.mark.parametrize("point", [(2.3522, 48.8566), (-74.006, 40.7128), (139.69, 35.69)])
def test_gcj02_is_identity_outside_china(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, "gcj02") == point
    assert from_wgs84(*point, "gcj02") == point


def test_unknown_crs_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown crs"):
        to_wgs84(110.0, 25.0, "cgcs2000")
    with pytest.raises(ValueError, match="unknown crs"):
        from_wgs84(110.0, 25.0, "WGS84")
