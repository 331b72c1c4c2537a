"""Tests for grid validation: every refusal kind, tolerances, MultiPolygons and upserts."""

import math
from typing import Any

import pytest

from geo.grid import LEVELS, PARENT_LEVEL, CellShape, GridError, feature_of, validate_grid

LAT0 = 25.0
M_LAT = 6_371_008.8 * math.pi / 180  # metres per degree of latitude
M_LON = M_LAT * math.cos(math.radians(LAT0 + 0.1))  # metres per degree of longitude here


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def feat(
    code: Any, level: Any, parent: Any, coords: Any, name: Any = "名", gtype: str = "Polygon"
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, "level": level, "parent_code": parent},
        "geometry": {"type": gtype, "coordinates": coords},
    }


def base() -> list[dict[str, Any]]:
    """District 450305 split into two townships, each split into two villages."""
    return [
        feat("450305", "district", None, box(110.0, 25.0, 110.2, 25.2)),
        feat("450305001", "township", "450305", box(110.0, 25.0, 110.1, 25.2)),
        feat("450305002", "township", "450305", box(110.1, 25.0, 110.2, 25.2)),
        feat("450305001001", "village", "450305001", box(110.0, 25.0, 110.1, 25.1)),
        feat("450305001002", "village", "450305001", box(110.0, 25.1, 110.1, 25.2)),
        feat("450305002001", "village", "450305002", box(110.1, 25.0, 110.2, 25.1)),
        feat("450305002002", "village", "450305002", box(110.1, 25.1, 110.2, 25.2)),
    ]


def existing() -> dict[str, CellShape]:
    result = validate_grid(base())
    assert result.ok
    return {c.code: c for c in result.cells}


def only_error(features: list[Any], **kw: Any) -> GridError:
    result = validate_grid(features, **kw)
    assert not result.ok
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def with_bad(index: int, **changes: Any) -> list[Any]:
    feats = base()
    feats[index] = {**feats[index], **changes}
    return feats


def with_prop(index: int, key: str, value: Any) -> list[Any]:
    feats = base()
    feats[index]["properties"][key] = value
    return feats


def with_geom(index: int, geometry: Any) -> list[Any]:
    feats = base()
    feats[index]["geometry"] = geometry
    return feats


# --- accepted grids ---------------------------------------------------------------------------


def test_constants() -> None:
    assert LEVELS == ("district", "township", "village")
    assert PARENT_LEVEL == {"district": None, "township": "district", "village": "township"}


def test_valid_grid_orders_cells_parents_first() -> None:
    result = validate_grid(list(reversed(base())))
    assert result.ok, result.errors
    assert result.errors == [] and result.warnings == []
    assert [c.level for c in result.cells] == ["district"] + ["township"] * 2 + ["village"] * 4
    assert result.cells[0] == CellShape("450305", "名", "district", None, result.cells[0].geometry)
    assert result.cells[0].geometry.area == pytest.approx(0.04)


def test_multipolygon_village_is_accepted() -> None:
    feats = base()
    # Village 1 of township 1 owns two separate pieces (an exclave); village 2 the rest.
    feats[3] = feat(
        "450305001001",
        "village",
        "450305001",
        [box(110.0, 25.0, 110.1, 25.1), box(110.0, 25.15, 110.05, 25.2)],
        gtype="MultiPolygon",
    )
    feats[4] = feat(
        "450305001002",
        "village",
        "450305001",
        [
            [
                [110.0, 25.1],
                [110.1, 25.1],
                [110.1, 25.2],
                [110.05, 25.2],
                [110.05, 25.15],
                [110.0, 25.15],
                [110.0, 25.1],
            ]
        ],
    )
    result = validate_grid(feats)
    assert result.ok, result.errors
    village = next(c for c in result.cells if c.code == "450305001001")
    assert village.geometry.geom_type == "MultiPolygon"


def test_polygon_with_hole_and_3d_coordinates_is_accepted() -> None:
    feats = base()
    ring = [
        [110.0, 25.0, 150.0],
        [110.2, 25.0, 150.0],
        [110.2, 25.2, 150.0],
        [110.0, 25.2, 150.0],
        [110.0, 25.0, 150.0],
    ]
    feats[0]["geometry"]["coordinates"] = [ring]
    result = validate_grid(feats[:1])
    assert result.ok
    assert not result.cells[0].geometry.has_z


def test_feature_of_round_trips() -> None:
    cells = validate_grid(base()).cells
    feats = [feature_of(c, {"synthetic": True}) for c in cells]
    assert feats[0]["type"] == "Feature"
    assert feats[0]["properties"] == {
        "code": "450305",
        "name": "名",
        "level": "district",
        "parent_code": None,
        "synthetic": True,
    }
    assert feats[0]["geometry"]["type"] == "Polygon"
    again = validate_grid(feats)
    assert again.ok and [c.code for c in again.cells] == [c.code for c in cells]
    assert feature_of(cells[0])["properties"].keys() == {"code", "name", "level", "parent_code"}


def test_code_not_prefixed_by_parent_is_a_warning_not_an_error() -> None:
    feats = with_prop(3, "code", "V-1")
    result = validate_grid(feats)
    assert result.ok
    assert any("V-1" in w and "450305001" in w for w in result.warnings)


def test_features_not_a_list() -> None:
    err = only_error("nope")  # type: ignore[arg-type]
    assert err.feature is None and "array" in err.msg


# --- refusals of a single feature -------------------------------------------------------------


@pytest.mark.parametrize(
    ("feats", "index", "words"),
    [
        (lambda: with_bad(2) + ["not a feature"], 7, "not an object"),
        (lambda: with_bad(2, type="Fetaure"), 2, "type must be 'Feature'"),
        (lambda: [{"type": "Feature", "geometry": base()[0]["geometry"]}], 0, "properties missing"),
        (lambda: with_prop(1, "code", None), 1, "code missing"),
        (lambda: with_prop(1, "code", 450305001), 1, "code must be a string"),
        (lambda: with_prop(1, "code", "45 03/05"), 1, "malformed"),
        (lambda: with_prop(1, "code", "x" * 41), 1, "malformed"),
        (lambda: with_prop(1, "name", None), 1, "name missing"),
        (lambda: with_prop(1, "name", "   "), 1, "name is empty"),
        (lambda: with_prop(1, "name", "名" * 201), 1, "too long"),
        (lambda: with_prop(1, "name", 7), 1, "name must be a string"),
        (lambda: with_prop(1, "level", "county"), 1, "level 'county' is not one of"),
        (lambda: with_prop(0, "parent_code", "45"), 0, "must be null for a district"),
        (lambda: with_prop(3, "parent_code", None), 3, "must be a non-empty string"),
        (lambda: with_prop(3, "parent_code", 450305001), 3, "must be a non-empty string"),
    ],
)
def test_property_refusals(feats: Any, index: int, words: str) -> None:
    result = validate_grid(feats())
    assert not result.ok
    mine = [e for e in result.errors if e.feature == index]
    assert mine, result.errors
    assert words in mine[0].msg


def test_feature_missing_properties_is_not_a_feature_object() -> None:
    err = only_error([42])
    assert err == GridError(0, None, "feature is not an object")


def test_missing_geometry_key() -> None:
    feats = base()
    del feats[5]["geometry"]
    err = only_error(feats)
    assert (err.feature, err.code, err.msg) == (5, "450305002001", "geometry missing")


NAN = float("nan")


@pytest.mark.parametrize(
    ("geometry", "words"),
    [
        (None, "geometry missing"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", "geometry is not an object"),
        ({"type": "Point", "coordinates": [110.15, 25.05]}, "non-polygon geometry"),
        ({"type": "LineString", "coordinates": [[110.1, 25.0], [110.2, 25.1]]}, "non-polygon"),
        ({"type": "Polygon"}, "coordinates missing"),
        ({"type": "Polygon", "coordinates": "110 25"}, "malformed coordinates"),
        ({"type": "Polygon", "coordinates": [[110.1, 25.0]]}, "malformed coordinates"),
        ({"type": "Polygon", "coordinates": [[["110.1", "25.0"]] * 4]}, "non-numeric"),
        ({"type": "Polygon", "coordinates": [[[True, 25.0]] * 4]}, "non-numeric"),
        (
            {"type": "Polygon", "coordinates": [[[110.1, 25.0], [110.2, 25.0], [110.1, 25.0]]]},
            "too few points",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[110.1, 25.0], [110.2, 25.0], [110.2, NAN], [110.1, 25.0]]],
            },
            "non-finite",
        ),
        ({"type": "Polygon", "coordinates": box(110.1, 25.0, 190.2, 25.1)}, "outside WGS-84"),
        ({"type": "Polygon", "coordinates": box(110.1, 25.0, 110.2, 95.0)}, "outside WGS-84"),
        ({"type": "Polygon", "coordinates": []}, "empty geometry"),
        ({"type": "MultiPolygon", "coordinates": []}, "empty geometry"),
        ({"type": "MultiPolygon", "coordinates": [[]]}, "empty geometry"),
        ({"type": "Polygon", "coordinates": [box(110.1, 25.0, 110.2, 25.1)[0][:-1]]}, "not closed"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[110.1, 25.0], [110.2, 25.1], [110.2, 25.0], [110.1, 25.1], [110.1, 25.0]]
                ],
            },
            "Self-intersection",
        ),
    ],
)
def test_geometry_refusals(geometry: Any, words: str) -> None:
    err = only_error(with_geom(5, geometry))
    assert (err.feature, err.code) == (5, "450305002001")
    assert words in err.msg
    if words == "Self-intersection":
        assert err.msg.startswith("invalid geometry")


def test_every_problem_of_every_feature_is_reported() -> None:
    feats = base()
    feats[1]["properties"].update(code=None, name="", level="town")
    feats[3]["geometry"] = {"type": "Point", "coordinates": [0, 0]}
    result = validate_grid(feats)
    msgs = {(e.feature, e.msg.split(" ")[0]) for e in result.errors}
    assert {(1, "code"), (1, "name"), (1, "level"), (3, "non-polygon")} <= msgs


# --- refusals between features ----------------------------------------------------------------


def test_duplicate_code_reports_the_later_feature() -> None:
    feats = base() + [feat("450305002002", "village", "450305002", box(110.1, 25.1, 110.2, 25.2))]
    err = only_error(feats)
    assert (err.feature, err.code) == (7, "450305002002")
    assert "duplicate code" in err.msg and "feature 6" in err.msg


def test_unknown_parent() -> None:
    err = only_error(with_prop(5, "parent_code", "450305009"))
    assert (err.feature, err.code) == (5, "450305002001")
    assert "unknown parent" in err.msg and "450305009" in err.msg


def test_parent_that_failed_validation_is_not_called_unknown() -> None:
    feats = base()
    feats[2]["geometry"] = None
    result = validate_grid(feats)
    assert [(e.feature, e.msg) for e in result.errors] == [(2, "geometry missing")]


def test_village_under_district_is_wrong_level() -> None:
    err = only_error(with_prop(5, "parent_code", "450305"))
    assert (err.feature, err.code) == (5, "450305002001")
    assert "wrong level" in err.msg and "must be a township" in err.msg


def test_township_under_township_is_wrong_level() -> None:
    feats = base() + [
        feat("450305001900", "township", "450305001", box(110.0, 25.0, 110.01, 25.01))
    ]
    result = validate_grid(feats)
    errs = [e for e in result.errors if e.feature == 7]
    assert errs and "must be a district" in errs[0].msg


def _village_east_edge(metres: float) -> list[Any]:
    """Village 450305001001 with its east edge pushed `metres` into the other township."""
    feats = base()
    x1 = 110.1 + metres / M_LON
    feats[3]["geometry"]["coordinates"] = box(110.0, 25.0, x1, 25.1)
    return feats


def test_child_sticking_out_5m_is_refused() -> None:
    feats = _village_east_edge(5.0)
    result = validate_grid(feats)
    outside = [e for e in result.errors if "not inside its parent" in e.msg]
    assert [(e.feature, e.code) for e in outside] == [(3, "450305001001")]
    assert "450305001" in outside[0].msg
    # It also pushes 5 m into village 450305002001 of the neighbouring township, which is not
    # a sibling: no overlap error for that.
    assert all("overlaps" not in e.msg for e in result.errors)


def test_child_sticking_out_half_a_metre_is_accepted() -> None:
    assert validate_grid(_village_east_edge(0.5)).ok


def test_tolerance_is_configurable() -> None:
    assert validate_grid(_village_east_edge(5.0), tolerance_m=10.0).ok
    assert not validate_grid(_village_east_edge(0.5), tolerance_m=0.1).ok


def _sibling_overlap(metres: float) -> list[Any]:
    """Village 450305001002 pushed `metres` south into its sibling 450305001001."""
    feats = base()
    y0 = 25.1 - metres / M_LAT
    feats[4]["geometry"]["coordinates"] = box(110.0, y0, 110.1, 25.2)
    return feats


def test_sibling_overlap_beyond_tolerance_is_refused_on_later_feature() -> None:
    err = only_error(_sibling_overlap(5.0))
    assert (err.feature, err.code) == (4, "450305001002")
    assert "overlaps" in err.msg and "450305001001" in err.msg


def test_sibling_sliver_of_half_a_metre_is_accepted() -> None:
    assert validate_grid(_sibling_overlap(0.5)).ok


def test_overlapping_townships_and_districts_are_refused() -> None:
    feats = base()
    feats[2]["geometry"]["coordinates"] = box(110.05, 25.0, 110.2, 25.2)
    feats.append(feat("450306", "district", None, box(110.1, 25.1, 110.3, 25.3)))
    result = validate_grid(feats)
    overlaps = {(e.feature, e.code) for e in result.errors if "overlaps" in e.msg}
    assert overlaps == {(2, "450305002"), (7, "450306")}


# --- upserts against an existing grid ---------------------------------------------------------


def test_upsert_adds_villages_under_existing_township() -> None:
    old = existing()
    # Township 450305002 is re-divided into three villages; the two old ones are overridden.
    new = [
        feat("450305002001", "village", "450305002", box(110.1, 25.0, 110.2, 25.05)),
        feat("450305002002", "village", "450305002", box(110.1, 25.05, 110.2, 25.1)),
        feat("450305002003", "village", "450305002", box(110.1, 25.1, 110.2, 25.2)),
    ]
    result = validate_grid(new, existing=old)
    assert result.ok, result.errors
    assert [c.code for c in result.cells] == ["450305002001", "450305002002", "450305002003"]


def test_upsert_overlapping_existing_sibling_is_refused() -> None:
    old = existing()
    new = [
        feat("450305002001", "village", "450305002", box(110.1, 25.0, 110.2, 25.1)),
        feat("450305002003", "village", "450305002", box(110.15, 25.15, 110.2, 25.2)),
    ]
    result = validate_grid(new, existing=old)
    assert [(e.feature, e.code) for e in result.errors] == [(1, "450305002003")]
    assert "existing village 450305002002" in result.errors[0].msg


def test_upsert_with_unknown_parent_and_against_existing_parent() -> None:
    old = existing()
    err = only_error(
        [feat("450305003001", "village", "450305003", box(110.0, 25.0, 110.01, 25.01))],
        existing=old,
    )
    assert err.feature == 0 and "unknown parent" in err.msg
    err = only_error(
        [feat("450305001003", "village", "450305001", box(110.15, 25.0, 110.16, 25.01))],
        existing=old,
    )
    assert err.feature == 0 and "not inside its parent" in err.msg


def test_upsert_shrinking_a_parent_reports_existing_children_outside() -> None:
    old = existing()
    new = [feat("450305002", "township", "450305", box(110.1, 25.0, 110.2, 25.15))]
    result = validate_grid(new, existing=old)
    assert [(e.feature, e.code) for e in result.errors] == [(None, "450305002002")]
    assert "existing village 450305002002" in result.errors[0].msg
    assert "not inside its parent" in result.errors[0].msg


def test_upsert_replacing_a_cell_does_not_clash_with_its_old_self() -> None:
    old = existing()
    moved = feat("450305001001", "village", "450305001", box(110.0, 25.0, 110.1, 25.1), name="新")
    result = validate_grid([moved], existing=old)
    assert result.ok and result.cells[0].name == "新"


def test_upsert_moving_a_cell_is_warned_about() -> None:
    old = existing()
    new = [
        feat("450305001002", "village", "450305002", box(110.1, 25.1, 110.2, 25.2)),
        feat("450305002002", "village", "450305001", box(110.0, 25.1, 110.1, 25.2)),
    ]
    result = validate_grid(new, existing=old)
    assert result.ok, result.errors
    assert any("moves" in w for w in result.warnings)


def test_default_existing_is_not_shared_state() -> None:
    validate_grid(base())
    result = validate_grid(base()[3:4])
    assert not result.ok and "unknown parent" in result.errors[0].msg
