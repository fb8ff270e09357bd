"""The dashboards' JSON: ids, layout, datasource references and targets Grafana can run."""

import itertools
from typing import Any

import pytest

from pipewarden.dashboards import catalog

FILES = catalog.dashboard_files()
#: What each panel type's targets must return, in Grafana's SQL datasource terms.
FORMATS = {
    "timeseries": "time_series",
    "state-timeline": "time_series",
    "table": "table",
    "stat": "table",
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


@pytest.fixture(params=FILES, ids=[f.stem for f in FILES])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return catalog.load(request.param)


def test_there_are_the_two_dashboards_with_distinct_uids_and_titles():
    loaded = [catalog.load(f) for f in FILES]
    assert {d["uid"] for d in loaded} == {"pipewarden-freshness", "pipewarden-checks"}
    assert len({d["title"] for d in loaded}) == len(loaded)
    assert all(len(d["uid"]) <= 40 and d["id"] is None for d in loaded)


def test_panel_ids_are_unique(dashboard):
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)


def test_panels_fit_the_grid_and_do_not_overlap(dashboard):
    boxes = []
    for p in panels(dashboard):
        g = p["gridPos"]
        assert set(g) == {"x", "y", "w", "h"}, p["title"]
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] > 0 and g["h"] > 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        boxes.append((p["title"], g))
    for (a, ga), (b, gb) in itertools.combinations(boxes, 2):
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


def test_every_datasource_reference_is_the_input_by_uid(dashboard):
    refs = catalog.datasource_refs(dashboard)
    expected = {"type": catalog.POSTGRES_PLUGIN, "uid": catalog.DATASOURCE_INPUT}
    assert refs and all(ref == expected for ref in refs)
    for p in panels(dashboard):
        assert p["datasource"] == expected, p["title"]
        assert all(t["datasource"] == expected for t in p["targets"]), p["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == expected
    for annotation in dashboard["annotations"]["list"]:
        assert annotation["datasource"] == annotation["target"]["datasource"] == expected
    inputs = {i["name"]: i["type"] for i in dashboard["__inputs"]}
    assert inputs["DS_PIPEWARDEN"] == "datasource"
    assert set(inputs) <= {"DS_PIPEWARDEN", "VAR_PREFECT_UI"}


def test_bound_dashboards_name_the_configured_uid_everywhere(dashboard):
    bound = catalog.bind(dashboard, "warehouse-ro")
    refs = catalog.datasource_refs(bound)
    assert len(refs) == len(catalog.datasource_refs(dashboard))
    assert {ref["uid"] for ref in refs} == {"warehouse-ro"}
    assert "__inputs" not in bound and "${DS_PIPEWARDEN}" not in str(bound)
    assert catalog.datasource_refs(dashboard)[0]["uid"] == catalog.DATASOURCE_INPUT  # a copy


def test_every_target_has_raw_sql_and_the_format_its_panel_needs(dashboard):
    for p in panels(dashboard):
        assert p["type"] in FORMATS, p["title"]
        assert len(p["targets"]) == 1, p["title"]
        for t in p["targets"]:
            assert t["refId"] == "A" and t["rawQuery"] is True, p["title"]
            assert t["format"] == FORMATS[p["type"]], p["title"]
            assert t["rawSql"].strip().upper().startswith(("SELECT", "WITH")), p["title"]


def test_every_panel_filters_by_the_multi_value_table_variable(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    table = variables["table"]
    assert table["type"] == "query" and table["multi"] and table["includeAll"]
    assert "pipewarden_metrics" in table["query"]
    for p in panels(dashboard):
        assert "$table" in p["targets"][0]["rawSql"], p["title"]
        if "repeat" in p:
            assert p["repeat"] in variables, p["title"]


def test_the_owner_variable_comes_before_the_table_variable_which_follows_it(dashboard):
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert [v["name"] for v in variables] == ["owner", "table"]
    owner, table = variables
    assert owner["multi"] and owner["includeAll"] and "allValue" not in owner
    assert "pipewarden_table_owners" in owner["query"] and "__value" in owner["query"]
    # Grafana refreshes the table variable when the owner changes, as it names it.
    assert "IN ($owner)" in table["query"] and table["refresh"] == 2
    assert owner["query"] == owner["definition"] and table["query"] == table["definition"]


def test_annotations_mark_incidents_repairs_and_schema_changes(dashboard):
    names = [a["name"] for a in dashboard["annotations"]["list"]]
    assert names == ["Incidents", "Repairs", "Schema changes"]
    for annotation in dashboard["annotations"]["list"]:
        target = annotation["target"]
        assert target["rawQuery"] is True and target["format"] == "table"
        sql = target["rawSql"]
        assert '"time"' in sql and " AS text" in sql and " AS tags" in sql, annotation["name"]
        assert "IN ($table)" in sql, annotation["name"]
    assert any(p["type"] == "timeseries" for p in panels(dashboard))  # where they show


def test_flow_run_links_follow_the_configured_prefect_ui():
    freshness = catalog.load(catalog.FOLDER / "freshness.json")
    bound = catalog.bind(freshness, "uid", "https://prefect.internal/")
    constant = next(v for v in bound["templating"]["list"] if v["name"] == "prefect_ui")
    assert constant["type"] == "constant" and constant["hide"] == 2
    assert constant["query"] == constant["current"]["value"] == "https://prefect.internal"
    links = _flow_run_links(bound)
    assert [link["url"] for link in links] == ["${prefect_ui}/runs/flow-run/${__value.raw}"]
    assert catalog.PREFECT_UI_INPUT not in str(bound)

    unlinked = catalog.bind(freshness, "uid")
    assert _flow_run_links(unlinked) == []
    runs = next(p for p in unlinked["panels"] if p["title"] == "Sync runs")
    assert "flow run" in runs["targets"][0]["rawSql"]  # the column stays, without a link
    assert catalog.PREFECT_UI_INPUT not in str(unlinked)


def _flow_run_links(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    runs = next(p for p in dashboard["panels"] if p["title"] == "Sync runs")
    return [
        link
        for override in runs["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
