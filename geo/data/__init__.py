"""Bundled demo data: the synthetic 七星区 (Qixing District, Guilin) grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QIXING_PATH: Path = Path(__file__).with_name("qixing.geojson")


def load_qixing() -> dict[str, Any]:
    """The demo grid as a GeoJSON FeatureCollection (boundaries are synthetic)."""
    with QIXING_PATH.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
