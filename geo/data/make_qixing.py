"""Regenerate qixing.geojson, the synthetic 七星区 demo grid: python -m geo.data.make_qixing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from geo.data import QIXING_PATH
from geo.grid import validate_grid
from geo.synthetic import synthetic_grid

DISTRICT_CODE = "450305"
DISTRICT_NAME = "七星区"
CENTER = (110.314, 25.258)
RADIUS_KM = 9.0
SEED = 450305

# The real township-level units and their statistical division codes; only these are real.
TOWNSHIPS: tuple[tuple[str, str], ...] = (
    ("450305001", "七星街道"),
    ("450305002", "东江街道"),
    ("450305003", "穿山街道"),
    ("450305004", "漓东街道"),
    ("450305200", "朝阳乡"),
    ("450305400", "桂林华侨旅游经济区"),
)

# Invented village/community names in the local style; urban 街道 hold 社区, rural units 村.
_STEMS: dict[str, tuple[str, ...]] = {
    "450305001": ("桂花", "月牙", "普陀", "辅星", "龙隐", "星辉", "骆驼", "花桥"),
    "450305002": ("东江", "三里店", "龙船坪", "七星岩", "漓滨", "江畔", "滨江", "东镇"),
    "450305003": ("穿山", "瓦窑", "建干", "小东江", "兴安里", "塔山", "净瓶", "南环"),
    "450305004": ("漓东", "象鼻", "竹林", "东岸", "新桥", "桂海", "金鸡", "沙洲"),
    "450305200": ("朝阳", "大埠", "花江", "晚塘", "东安", "茶岭", "罗家", "道光"),
    "450305400": ("侨乡", "木山", "碧岩", "桂侨", "马家", "南洲", "尧山", "莲塘"),
}
_SUFFIX = {code: "社区" if name.endswith("街道") else "村" for code, name in TOWNSHIPS}

DESCRIPTION = (
    "SYNTHETIC demo grid shaped like 七星区, 桂林市 (Qixing District, Guilin). The district "
    "and township codes and names are the real statistical division codes, but ALL boundaries "
    "are generated (Voronoi cells) and are NOT real administrative boundaries; village and "
    "community names and codes are invented. Import the real grid for production use."
)


def village_name(township_code: str, index: int) -> str:
    """Invented name of the index-th (1-based) village or community of a township."""
    return _STEMS[township_code][index - 1] + _SUFFIX[township_code]


def build() -> dict[str, Any]:
    """The demo FeatureCollection, identical on every run."""
    fc = synthetic_grid(
        DISTRICT_CODE,
        DISTRICT_NAME,
        CENTER,
        TOWNSHIPS,
        (4, 8),
        RADIUS_KM,
        seed=SEED,
        village_name=village_name,
    )
    fc["name"] = "七星区 demo grid (synthetic)"
    fc["description"] = DESCRIPTION
    return fc


def dumps(fc: dict[str, Any]) -> str:
    """GeoJSON text with one feature per line, so regenerations diff readably."""
    head = {k: v for k, v in fc.items() if k != "features"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [']
    feats = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in fc["features"]]
    lines.append(",\n".join(feats))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(path: Path = QIXING_PATH) -> int:
    fc = build()
    result = validate_grid(fc["features"])
    if not result.ok:
        for err in result.errors:
            print(f"feature {err.feature} {err.code}: {err.msg}", file=sys.stderr)
        return 1
    path.write_text(dumps(fc), encoding="utf-8")
    print(f"wrote {len(fc['features'])} features to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
