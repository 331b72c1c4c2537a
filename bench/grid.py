"""Synthetic bench grids: generated once per size with geo.synthetic, cached under bench/.cache/."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from geo.synthetic import random_points_in, synthetic_grid

CACHE_DIR = Path(__file__).parent / ".cache"
DISTRICT_CODE = "450399"
DISTRICT_NAME = "基准区"
CENTER = (110.3, 25.3)
VILLAGES_PER_TOWNSHIP = 333  # 100 000 villages -> 300 townships, as in a large district
KM2_PER_VILLAGE = 1.5
SAMPLE_POINTS = 20_000
NEAR_DEG = 0.0008  # about 80 m of latitude


@dataclass(frozen=True)
class BenchGrid:
    """A cached grid file with what workloads need to aim at it."""

    villages: int
    townships: list[str]
    district: str
    geojson: Path
    points: Path  # JSON list of [lon, lat, near_lon, near_lat] inside the district

    def sample_points(self) -> list[list[float]]:
        """[lon, lat, near_lon, near_lat] rows (see _write_points)."""
        points: list[list[float]] = json.loads(self.points.read_text())
        return points


def _shape(villages: int) -> tuple[int, int, float]:
    townships = max(1, round(villages / VILLAGES_PER_TOWNSHIP))
    per_township = min(999, max(1, villages // townships))  # village codes have 3 digits
    radius_km = math.sqrt(townships * per_township * KM2_PER_VILLAGE / math.pi)
    return townships, per_township, radius_km


def bench_grid(villages: int, log: Callable[[str], None] = print) -> BenchGrid:
    """The grid of about `villages` villages, generated on first use and cached."""
    townships, per_township, radius_km = _shape(villages)
    actual = townships * per_township
    stem = CACHE_DIR / f"grid-{actual}v-{townships}t"
    geojson, points = stem.with_suffix(".geojson"), stem.with_suffix(".points.json")
    township_codes = [f"{DISTRICT_CODE}{i:03d}" for i in range(1, townships + 1)]
    if not geojson.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        log(f"generating a synthetic grid: {actual} villages under {townships} townships")
        collection = synthetic_grid(
            DISTRICT_CODE,
            DISTRICT_NAME,
            CENTER,
            townships,
            per_township,
            radius_km,
            seed=actual,
        )
        tmp = geojson.with_suffix(".tmp")
        tmp.write_text(json.dumps(collection, ensure_ascii=False))
        tmp.replace(geojson)
        log(f"generated in {time.perf_counter() - started:.1f}s -> {geojson}")
    if not points.exists():
        _write_points(_district_of(geojson), points)
    return BenchGrid(actual, township_codes, DISTRICT_CODE, geojson, points)


def _district_of(geojson: Path) -> shapely.Geometry:
    with geojson.open(encoding="utf-8") as f:
        collection = json.load(f)
    return shapely.geometry.shape(collection["features"][0]["geometry"])


def _write_points(district: shapely.Geometry, path: Path) -> None:
    """Uniform points inside the district, each with a neighbour within ~100 m, also inside.

    Reports sent to a neighbour land near an earlier report, so that incidents merge; keeping
    both inside the grid keeps "outside-grid" refusals out of the error count.
    """
    rng = np.random.default_rng(7)
    sample = np.array(random_points_in(district, SAMPLE_POINTS, seed=1))
    shapely.prepare(district)
    near = sample.copy()
    todo = np.ones(len(sample), dtype=bool)
    while todo.any():
        jitter = rng.uniform(-NEAR_DEG, NEAR_DEG, size=(int(todo.sum()), 2))
        near[todo] = sample[todo] + jitter
        todo = ~shapely.contains_xy(district, near[:, 0], near[:, 1])
    rows = np.round(np.hstack([sample, near]), 7).tolist()
    path.write_text(json.dumps(rows))
