"""Chinese map coordinate systems: WGS-84, GCJ-02 ("Mars") and BD-09 (Baidu)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

CRS = Literal["wgs84", "gcj02", "bd09"]
SUPPORTED_CRS: tuple[str, ...] = get_args(CRS)

# Krasovsky 1940 ellipsoid, as baked into the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

# Inverses are solved to far below a millimetre; 1e-12 degrees is ~0.1 micrometre.
_INVERSE_TOL_DEG = 1e-12
_INVERSE_MAX_ITER = 50

Transform = Callable[[float, float], tuple[float, float]]


def out_of_china(lon: float, lat: float) -> bool:
    """True when the point lies outside the rough box where GCJ-02 applies."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Apply the GCJ-02 obfuscation; identity outside China."""
    if out_of_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Apply Baidu's BD-09 shift on top of GCJ-02 (applied everywhere, as Baidu does)."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _invert(
    forward: Transform, lon: float, lat: float, guess: tuple[float, float]
) -> tuple[float, float]:
    # Both shifts are smooth with a Jacobian within ~1e-3 of identity, so the fixed-point
    # iteration p <- p - (forward(p) - target) contracts fast (a few steps to 1e-12).
    # The published one-step inverses stop 1-2 m short, enough to flip border villages.
    x, y = guess
    best = (x, y)
    best_err = math.inf
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        err = max(abs(ex), abs(ey))
        if err < best_err:
            best, best_err = (x, y), err
        if err < _INVERSE_TOL_DEG:
            break
        x, y = x - ex, y - ey
    return best


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert GCJ-02 iteratively so that wgs84_to_gcj02 of the result gives back (lon, lat)."""
    fx, fy = wgs84_to_gcj02(lon, lat)
    guess = (2.0 * lon - fx, 2.0 * lat - fy)
    return _invert(wgs84_to_gcj02, lon, lat, guess)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Invert BD-09 iteratively so that gcj02_to_bd09 of the result gives back (lon, lat)."""
    return _invert(gcj02_to_bd09, lon, lat, _bd09_to_gcj02_approx(lon, lat))


def _check(crs: str) -> None:
    if crs not in SUPPORTED_CRS:
        raise ValueError(f"unknown crs {crs!r}; expected one of {', '.join(SUPPORTED_CRS)}")


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a point given in `crs` to WGS-84."""
    _check(crs)
    if crs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if crs == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    return lon, lat


def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a WGS-84 point to `crs`."""
    _check(crs)
    if crs == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if crs == "bd09":
        return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    return lon, lat
