"""The Kibana saved objects and ``ingest kibana setup``.

Kibana cannot run here. The NDJSON is checked for what Kibana would refuse or render empty: references that
point nowhere, reference names nothing uses, field names the index mapping does not have or has with a type
the chart cannot use. The command is run against a loopback HTTP server that records the request it gets.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest.cli import main
from ingest.config import ElasticsearchSettings, KibanaSettings
from ingest.embedded.services import free_port
from ingest.errors import ConfigError
from ingest.search_index.kibana import (
    DASHBOARD_ID,
    DATA_VIEW_ID,
    auth_headers,
    import_url,
    load_saved_objects,
    parse_import_answer,
    saved_objects_for,
)
from ingest.search_index.template import index_names, index_template

OBJECTS = load_saved_objects()
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}
TYPES = {"index-pattern", "search", "lens", "map", "dashboard"}
# Attributes Kibana stores as JSON inside a string.
STRING_ENCODED = {"fields", "fieldFormatMap", "runtimeFieldMap", "typeMeta"}

KEYWORDS = {"keyword", "constant_keyword", "wildcard"}
NUMBERS = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
DATES = {"date", "date_nanos"}
AGGREGATABLE = KEYWORDS | NUMBERS | DATES | {"ip", "boolean"}
# The mapping types each use of a field needs.
USES: dict[str, set[str] | None] = {
    "time": DATES,
    "date_histogram": DATES,
    "terms": KEYWORDS | NUMBERS | {"ip", "boolean"},
    "unique_count": AGGREGATABLE,
    "sort": AGGREGATABLE,
    "geo": {"geo_point", "geo_shape"},
    "sum": NUMBERS,
    "avg": NUMBERS,
    "min": NUMBERS | DATES,
    "max": NUMBERS | DATES,
    "count": None,  # any mapped field
    "show": None,
    "format": None,
}


# ---------------------------------------------------------------- reading the objects


def _decoded(value: Any, key: str = "") -> Any:
    """The value with every JSON-in-a-string attribute (``panelsJSON``, ``layerListJSON``…) parsed."""
    if isinstance(value, str) and (key.endswith("JSON") or key in STRING_ENCODED):
        return _decoded(json.loads(value))
    if isinstance(value, dict):
        return {k: _decoded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _attributes(obj: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = _decoded(obj["attributes"])
    return decoded


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _mapping(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``field path -> mapping type``, objects walked and multi-fields (``title.fr``) included."""
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            fields.update(_mapping(spec["properties"], f"{path}."))
            continue
        fields[path] = spec.get("type", "object")
        for sub, sub_spec in (spec.get("fields") or {}).items():
            fields[f"{path}.{sub}"] = sub_spec["type"]
    return fields


MAPPING = _mapping(index_template("news")["template"]["mappings"]["properties"])


@dataclass(frozen=True)
class FieldUse:
    obj: str
    field: str
    use: str


def _field_uses(obj: dict[str, Any]) -> tuple[list[FieldUse], list[str]]:
    """Every index field the object names, with what it does with it; and keys naming fields this walk does
    not understand (so a new kind of field reference cannot slip past the mapping check)."""
    attrs = _attributes(obj)
    where = f"{obj['type']} {obj['id']}"
    uses: list[FieldUse] = []
    unknown: list[str] = []
    if obj["type"] == "search":
        uses += [FieldUse(where, c, "show") for c in attrs["columns"]]
        uses += [FieldUse(where, field, "sort") for field, _direction in attrs.get("sort", [])]
    metrics_seen: set[int] = set()
    for node in _walk(attrs):
        for key, value in node.items():
            if key == "sourceField":
                if value != "___records___":  # Lens's name for "count documents", not a field
                    uses.append(FieldUse(where, value, node["operationType"]))
            elif key == "geoField":
                uses.append(FieldUse(where, value, "geo"))
            elif key == "sortField":
                uses.append(FieldUse(where, value, "sort"))
            elif key == "timeFieldName":
                uses.append(FieldUse(where, value, "time"))
            elif key == "tooltipProperties":
                uses += [FieldUse(where, f, "show") for f in value]
            elif key == "fieldFormatMap":
                uses += [FieldUse(where, f, "format") for f in value]
            elif key == "metrics" and isinstance(value, list):
                for metric in value:
                    if isinstance(metric, dict) and "field" in metric:
                        metrics_seen.add(id(metric))
                        uses.append(FieldUse(where, metric["field"], metric["type"]))
            elif key == "field" and isinstance(value, dict) and value.get("origin") == "source":
                pass  # a map style reads what its layer computes: test_map_styles_read_what_their_layer_computes
            elif key == "field" and id(node) in metrics_seen:
                pass
            elif "field" in key.lower() and key not in {"fields", "fieldMetaOptions", "runtimeFieldMap"}:
                unknown.append(f"{where}: {key}={value!r}")
    return uses, unknown


def _reference_names_used(obj: dict[str, Any]) -> set[str]:
    """The reference names the object's attributes point through."""
    attrs = _attributes(obj)
    used: set[str] = set()
    for node in _walk(attrs):
        for key in ("indexRefName", "indexPatternRefName"):
            if key in node:
                used.add(node[key])
        if "panelRefName" in node:
            used.add(f"{node['panelIndex']}:{node['panelRefName']}")
    if obj["type"] == "lens":
        layers = attrs["state"]["datasourceStates"]["formBased"]["layers"]
        used |= {f"indexpattern-datasource-layer-{layer}" for layer in layers}
    return used


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = _attributes(BY_KEY[("dashboard", DASHBOARD_ID)])["panelsJSON"]
    return panels


# ---------------------------------------------------------------- the NDJSON


def test_every_line_is_a_saved_object_with_a_stable_unique_id() -> None:
    ids = [(o["type"], o["id"]) for o in OBJECTS]
    assert len(ids) == len(set(ids)), "duplicate saved object ids"
    for obj in OBJECTS:
        assert obj["type"] in TYPES, obj["type"]
        assert obj["id"].startswith("ingest-news-"), f"{obj['id']}: ids are fixed and readable so imports overwrite"
        assert obj["attributes"]["title"], f"{obj['id']} has no title"
        _attributes(obj)  # every JSON-in-a-string attribute parses
    assert ("index-pattern", DATA_VIEW_ID) in BY_KEY and ("dashboard", DASHBOARD_ID) in BY_KEY


def test_every_reference_points_at_an_object_of_the_file_with_its_type() -> None:
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']} -> {ref['type']} {ref['id']}: not in the file"


def test_every_reference_name_is_used_and_every_use_has_a_reference() -> None:
    for obj in OBJECTS:
        declared = [ref["name"] for ref in obj["references"]]
        assert len(declared) == len(set(declared)), f"{obj['id']}: reference names repeat"
        used = _reference_names_used(obj)
        assert used == set(declared), f"{obj['id']}: used {sorted(used)}, declared {sorted(declared)}"


def test_visualizations_and_the_saved_search_read_the_data_view() -> None:
    for obj in OBJECTS:
        if obj["type"] in {"search", "lens", "map"}:
            targets = {(r["type"], r["id"]) for r in obj["references"]}
            assert targets == {("index-pattern", DATA_VIEW_ID)}, f"{obj['id']} reads {targets}"


def test_the_dashboard_shows_every_visualization_and_the_saved_search() -> None:
    dashboard = BY_KEY[("dashboard", DASHBOARD_ID)]
    refs = {r["name"]: (r["type"], r["id"]) for r in dashboard["references"]}
    shown = set()
    for panel in _panels():
        target = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert panel["type"] == target[0], f"panel {panel['panelIndex']} is a {panel['type']}, refers to {target}"
        assert panel["gridData"]["i"] == panel["panelIndex"]
        shown.add(target)
    assert shown == {(o["type"], o["id"]) for o in OBJECTS if o["type"] in {"search", "lens", "map"}}


def test_dashboard_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels():
        grid = panel["gridData"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 48, f"{panel['panelIndex']}: {grid}"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['panelIndex']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["panelIndex"]


def test_lens_accessors_name_columns_of_their_layer() -> None:
    for obj in (o for o in OBJECTS if o["type"] == "lens"):
        state = _attributes(obj)["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        columns = {c for layer in layers.values() for c in layer["columns"]}
        for layer in layers.values():
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), obj["id"]
        vis = state["visualization"]
        named = set()
        for node in _walk(vis):
            for key in ("xAccessor", "splitAccessor", "metricAccessor", "secondaryMetricAccessor", "columnId"):
                if key in node:
                    named.add(node[key])
            for key in ("accessors", "primaryGroups", "metrics"):
                named |= set(node.get(key, []))
            if "layerId" in node:
                assert node["layerId"] in layers, f"{obj['id']}: layer {node['layerId']} has no datasource layer"
        for layer in layers.values():
            for column in layer["columns"].values():
                order_by = column.get("params", {}).get("orderBy", {})
                if order_by.get("type") == "column":
                    named.add(order_by["columnId"])
        assert named and named <= columns, f"{obj['id']}: accessors {sorted(named - columns)} are not columns"
        assert columns <= named, f"{obj['id']}: columns {sorted(columns - named)} are never shown"


def test_every_field_exists_in_the_index_mapping_with_a_type_that_fits_its_use() -> None:
    problems = []
    for obj in OBJECTS:
        uses, unknown = _field_uses(obj)
        problems += unknown
        for use in uses:
            mapped = MAPPING.get(use.field)
            if mapped is None:
                problems.append(f"{use.obj}: {use.field!r} ({use.use}) is not in index_template.json")
                continue
            allowed = USES[use.use]
            if allowed is not None and mapped not in allowed:
                problems.append(f"{use.obj}: {use.field!r} is {mapped}; {use.use} needs one of {sorted(allowed)}")
    assert not problems, "\n".join(problems)


def test_map_styles_read_what_their_layer_computes() -> None:
    for obj in (o for o in OBJECTS if o["type"] == "map"):
        for layer in _attributes(obj)["layerListJSON"]:
            source = layer["sourceDescriptor"]
            computed = {f"{m['type']}_of_{m['field']}" for m in source.get("metrics", []) if "field" in m}
            if source["type"] == "ES_GEO_GRID":
                computed.add("doc_count")
            for node in _walk(layer.get("style", {})):
                field = node.get("field")
                if isinstance(field, dict) and field.get("origin") == "source":
                    assert field["name"] in computed, f"{obj['id']} {layer['id']}: style reads {field['name']!r}"


def test_the_dashboard_has_the_views_analysts_asked_for() -> None:
    uses = {(u.field, u.use) for o in OBJECTS for u in _field_uses(o)[0]}
    assert {
        ("published_at", "time"),  # the data view's time field
        ("published_at", "date_histogram"),  # articles over time
        ("source.name", "terms"),  # top sources
        ("persons", "terms"),
        ("organizations", "terms"),
        ("places.gazetteer_name", "terms"),  # one value per place across languages
        ("places.geo", "geo"),  # the map
        ("language", "terms"),
        ("story_id", "terms"),  # largest stories
        ("story_id", "unique_count"),  # how many stories
    } <= uses
    search = _attributes(BY_KEY[("search", "ingest-news-search-articles")])
    assert search["columns"] == ["title", "source.name", "language", "persons"]
    assert search["sort"] == [["published_at", "desc"]]


# ---------------------------------------------------------------- the index prefix


def test_the_file_names_the_read_alias_of_the_default_prefix() -> None:
    data_view = BY_KEY[("index-pattern", DATA_VIEW_ID)]["attributes"]
    assert data_view["title"] == index_names(ElasticsearchSettings().index_prefix)[1]
    assert data_view["timeFieldName"] == "published_at"
    assert saved_objects_for(OBJECTS, ElasticsearchSettings().index_prefix) == OBJECTS


def test_another_prefix_rewrites_only_the_data_view_pattern() -> None:
    before = json.dumps(OBJECTS)
    fitted = saved_objects_for(OBJECTS, "press")
    assert json.dumps(OBJECTS) == before, "the loaded objects must not be modified"
    changed = [(a["id"], b["attributes"]["title"]) for a, b in zip(OBJECTS, fitted, strict=True) if a != b]
    assert changed == [(DATA_VIEW_ID, index_names("press")[1])]


# ---------------------------------------------------------------- pure request parts


def test_import_url_per_space() -> None:
    assert import_url("http://kb:5601/", "default") == "http://kb:5601/api/saved_objects/_import?overwrite=true"
    assert import_url("http://kb:5601", "research") == (
        "http://kb:5601/s/research/api/saved_objects/_import?overwrite=true"
    )
    with pytest.raises(ConfigError, match="INGEST_KIBANA__SPACE"):
        import_url("http://kb:5601", "Research Team")


def test_auth_headers_prefer_the_api_key() -> None:
    assert auth_headers(KibanaSettings()) == {}
    assert auth_headers(KibanaSettings(api_key="k1", username="u", password="p")) == {"Authorization": "ApiKey k1"}
    basic = auth_headers(KibanaSettings(username="analyst", password="s3cret"))
    assert basic == {"Authorization": "Basic " + base64.b64encode(b"analyst:s3cret").decode()}
    with pytest.raises(ConfigError, match="INGEST_KIBANA__PASSWORD"):
        auth_headers(KibanaSettings(username="analyst"))


def test_import_answer_errors_are_one_line_each() -> None:
    count, lines = parse_import_answer({
        "success": False,
        "successCount": 10,
        "errors": [
            {"id": "ingest-news-map-places", "type": "map", "meta": {"title": "Places in the news"},
             "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "gone"}]}},
            {"id": "x", "type": "lens", "error": {"type": "unknown", "message": "bad\nstate", "statusCode": 400}},
        ],
    })
    assert count == 10
    assert lines == (
        "map ingest-news-map-places (Places in the news): missing_references: missing index-pattern gone",
        "lens x: unknown: bad state",
    )


# ---------------------------------------------------------------- `ingest kibana setup` against a loopback server


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def upload(self) -> tuple[str, str, bytes]:
        """``(form field name, file name, file bytes)`` of the one multipart part."""
        raw = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
        assert message.is_multipart(), self.headers["content-type"]
        [part] = list(message.iter_parts())
        field, filename, payload = (part.get_param("name", header="content-disposition"), part.get_filename(),
                                    part.get_payload(decode=True))
        assert isinstance(field, str) and isinstance(filename, str) and isinstance(payload, bytes), part
        return field, filename, payload


class FakeKibana(ThreadingHTTPServer):
    """Records every request; answers each with ``status`` and ``answer``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.status = 200
        self.answer: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeKibana

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append(Received(self.command, self.path, headers, body))
        payload = json.dumps(self.server.answer).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._record()

    def do_POST(self) -> None:
        self._record()

    def do_PUT(self) -> None:
        self._record()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kibana() -> Iterator[FakeKibana]:
    server = FakeKibana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: no INGEST_* leftovers from the host."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("INGEST_"):
            monkeypatch.delenv(name)


def _success() -> dict[str, Any]:
    return {"success": True, "successCount": len(OBJECTS),
            "successResults": [{"type": o["type"], "id": o["id"], "overwrite": True} for o in OBJECTS]}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_setup_posts_the_ndjson_to_the_import_api(kibana: FakeKibana, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_KIBANA__API_KEY", "a2V5OnNlY3JldA==")
    kibana.answer = _success()
    code, out, err = _run(["kibana", "setup", "--url", kibana.url], capsys)
    assert (code, err) == (0, "")
    assert f"{len(OBJECTS)} saved object(s) imported" in out
    assert f"{kibana.url}/app/dashboards#/view/{DASHBOARD_ID}" in out
    [request] = kibana.received
    assert request.method == "POST"
    assert request.path == "/api/saved_objects/_import?overwrite=true"
    assert request.headers["kbn-xsrf"] == "true"
    assert request.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    field, filename, payload = request.upload()
    assert field == "file" and filename.endswith(".ndjson")
    assert [json.loads(line) for line in payload.decode().splitlines()] == OBJECTS


def test_setup_into_a_space_with_basic_auth_and_another_prefix(kibana: FakeKibana,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_KIBANA__URL", kibana.url)
    monkeypatch.setenv("INGEST_KIBANA__USERNAME", "analyst")
    monkeypatch.setenv("INGEST_KIBANA__PASSWORD", "s3cret")
    monkeypatch.setenv("INGEST_ELASTICSEARCH__INDEX_PREFIX", "press")
    kibana.answer = _success()
    code, out, _err = _run(["kibana", "setup", "--space", "research"], capsys)
    assert code == 0
    assert f"{kibana.url}/s/research/app/dashboards#/view/{DASHBOARD_ID}" in out
    [request] = kibana.received
    assert request.path == "/s/research/api/saved_objects/_import?overwrite=true"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"analyst:s3cret").decode()
    sent = {(o["type"], o["id"]): o for o in map(json.loads, request.upload()[2].decode().splitlines())}
    assert sent[("index-pattern", DATA_VIEW_ID)]["attributes"]["title"] == "press"


def test_a_second_setup_sends_the_same_request(kibana: FakeKibana, capsys: pytest.CaptureFixture[str]) -> None:
    kibana.answer = _success()
    assert _run(["kibana", "setup", "--url", kibana.url], capsys)[0] == 0
    assert _run(["kibana", "setup", "--url", kibana.url], capsys)[0] == 0
    first, second = kibana.received
    assert (first.method, first.path) == (second.method, second.path)
    assert "overwrite=true" in first.path
    assert first.upload() == second.upload()
    assert "authorization" not in first.headers, "no credentials configured: none sent"


def test_the_printed_dashboard_address_follows_a_new_id_kibana_gave(kibana: FakeKibana,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    kibana.answer = _success()
    for result in kibana.answer["successResults"]:
        if result["type"] == "dashboard":
            result["destinationId"] = "0f6c2f4e-5d1a-4b8e-9a57-4c4f3e2b1a90"
    code, out, _err = _run(["kibana", "setup", "--url", kibana.url, "--space", "newsroom"], capsys)
    assert code == 0
    assert f"{kibana.url}/s/newsroom/app/dashboards#/view/0f6c2f4e-5d1a-4b8e-9a57-4c4f3e2b1a90" in out


def test_objects_kibana_refuses_are_listed_one_line_each(kibana: FakeKibana,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    kibana.answer = {"success": False, "successCount": len(OBJECTS) - 1, "errors": [
        {"id": "ingest-news-map-places", "type": "map", "meta": {"title": "Places in the news"},
         "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": DATA_VIEW_ID}]}}]}
    code, out, err = _run(["kibana", "setup", "--url", kibana.url], capsys)
    assert code == 1
    assert f"{len(OBJECTS) - 1} saved object(s) imported" in out and "1 refused" in out
    assert err.splitlines() == [
        "ingest: error: kibana refused map ingest-news-map-places (Places in the news): missing_references: "
        f"missing index-pattern {DATA_VIEW_ID}"
    ]


@pytest.mark.parametrize(
    ("status", "answer", "exit_code", "hint"),
    [
        (401, {"statusCode": 401, "error": "Unauthorized",
               "message": "[security_exception]: missing authentication credentials"}, 2, "INGEST_KIBANA__API_KEY"),
        (404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}, 2, "INGEST_KIBANA__URL"),
        (503, {"statusCode": 503, "error": "Service Unavailable", "message": "Kibana server is not ready yet"}, 3,
         "run again"),
    ],
)
def test_an_error_answer_is_one_line_and_a_nonzero_exit(kibana: FakeKibana, capsys: pytest.CaptureFixture[str],
                                                        status: int, answer: dict[str, Any], exit_code: int,
                                                        hint: str) -> None:
    kibana.status, kibana.answer = status, answer
    code, out, err = _run(["kibana", "setup", "--url", kibana.url], capsys)
    assert code == exit_code
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("ingest: error: ")
    assert f"{kibana.url}/api/saved_objects/_import" in line and f"HTTP {status}" in line and hint in line
    assert answer["message"] in line


def test_an_unreachable_kibana_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = _run(["kibana", "setup", "--url", url], capsys)
    assert code == 3
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"ingest: error: Kibana is not reachable at {url}/api/saved_objects/_import")
    assert "INGEST_KIBANA__URL" in line
