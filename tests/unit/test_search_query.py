"""The search request body (pure) and the --filter parser, checked against the index template's mapping."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.errors import ConfigError
from ingest.search_index.query import FACETS, build_query, check_size, parse_filters, parse_when
from ingest.search_index.template import index_template


def _mapping_field(path: str) -> dict[str, Any]:
    """The mapping of a dotted field (``source.name``, ``title.fr``) in the repo's index template."""
    node: dict[str, Any] = {"properties": index_template("news")["template"]["mappings"]["properties"]}
    for part in path.split("."):
        children = node.get("properties") or node.get("fields") or {}
        assert part in children, f"{path!r} is not in the index template"
        node = children[part]
    return node


def test_filters_are_term_filters_on_keyword_fields() -> None:
    filters = parse_filters(["persons=Vladimir Poutine", "source=Le Monde", "domain=lemonde.fr", "story=abc123"])
    body = build_query("drones", facets=[], filters=filters, size=10)
    assert body["query"]["bool"]["filter"] == [
        {"term": {"persons": "Vladimir Poutine"}},
        {"term": {"source.name": "Le Monde"}},
        {"term": {"source.domain": "lemonde.fr"}},
        {"term": {"story_id": "abc123"}},
    ]
    for clause in body["query"]["bool"]["filter"]:
        (field,) = clause["term"]
        assert _mapping_field(field)["type"] == "keyword"


def test_facets_are_terms_aggregations_on_the_mapped_fields() -> None:
    body = build_query("*", facets=["persons", "locations", "source", "language"], filters=[], size=0)
    assert body["aggs"] == {
        "persons": {"terms": {"field": "persons", "size": 10}},
        "locations": {"terms": {"field": "locations", "size": 10}},
        "source": {"terms": {"field": "source.name", "size": 10}},
        "language": {"terms": {"field": "language", "size": 10}},
    }
    assert body["size"] == 0


@pytest.mark.parametrize("name", list(FACETS))
def test_every_facet_is_a_keyword_field_of_the_template(name: str) -> None:
    # A terms aggregation on a text field fails at query time; on a missing field it silently returns nothing.
    field = build_query("*", facets=[name], filters=[], size=0)["aggs"][name]["terms"]["field"]
    assert _mapping_field(field)["type"] == "keyword"
    # The same name works as a filter on the same field.
    assert parse_filters([f"{name}=x"]) == [(field, "x")]


@pytest.mark.parametrize("query", ["*", "", "   ", " * "])
def test_match_all(query: str) -> None:
    body = build_query(query, facets=[], filters=[], size=5)
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert body["query"]["bool"]["filter"] == []
    assert body["size"] == 5
    assert body["track_total_hits"] is True


def _clauses(node: Any, kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` clause in a query body, however deep."""
    if isinstance(node, dict):
        return ([node[kind]] if kind in node else []) + [c for v in node.values() for c in _clauses(v, kind)]
    if isinstance(node, list):
        return [c for v in node for c in _clauses(v, kind)]
    return []


def test_text_query_reads_each_language_through_its_own_analysis() -> None:
    body = build_query("Poutine drones", facets=[], filters=[], size=10)
    queries = _clauses(body["query"], "simple_query_string")
    assert {q["query"] for q in queries} == {"Poutine drones"}
    assert {q["default_operator"] for q in queries} == {"and"}
    by_analyzer: dict[str, set[str]] = {}
    for q in queries:
        for field in q["fields"]:
            mapping = _mapping_field(field.split("^")[0])
            assert mapping["type"] == "text"
            by_analyzer.setdefault(mapping["analyzer"], set()).add(field.split("^")[0].split(".")[-1])
    # French and English copies with their analysers, the neutral fields for the other languages.
    assert by_analyzer == {a: {"title", "summary", "text"} for a in ("fr_text", "en_text", "folded")}
    (other,) = (c for c in _clauses(body["query"], "bool") if "must_not" in c)
    assert other["must_not"] == [{"terms": {"language": ["fr", "en"]}}]
    for field in body["highlight"]["fields"]:
        assert _mapping_field(field)["type"] == "text"
    for field in body["_source"]:
        _mapping_field(field)


def test_unknown_facet_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'people'"):
        build_query("*", facets=["people"], filters=[], size=10)


def test_parse_filters() -> None:
    assert parse_filters([" persons = Vladimir Poutine ", "tags=a=b", "language=fr"]) == [
        ("persons", "Vladimir Poutine"),
        ("tags", "a=b"),
        ("language", "fr"),
    ]
    assert parse_filters([]) == []


def test_unknown_filter_field_names_it_and_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        parse_filters(["nofield=x"])
    message = str(info.value)
    assert "'nofield'" in message
    assert "persons" in message
    assert "\n" not in message


@pytest.mark.parametrize("raw", ["persons", "persons=", "=Poutine", ""])
def test_filter_without_field_and_value_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_filters([raw])


def test_persons_without_equals_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError, match=r"expected FIELD=VALUE") as info:
        parse_filters(["persons"])
    assert "'persons'" in str(info.value)


@pytest.mark.parametrize(("given", "sent"), [
    ("2025-07-01", "2025-07-01"), ("2025-07-01T12:00:00Z", "2025-07-01T12:00:00Z"), ("24h", "now-24h"),
    ("7d", "now-7d"), ("2w", "now-2w"), ("today", "now/d"), ("Yesterday", "now-1d/d"), ("now-7d/d", "now-7d/d"),
    (None, None),
])
def test_since_and_until_take_dates_durations_and_names(given: str | None, sent: str | None) -> None:
    assert parse_when("--since", given) == sent


@pytest.mark.parametrize("given", ["2025-13-45", "last week", "7 days", "now-7x", ""])
def test_a_date_that_is_not_one_says_what_is_accepted(given: str) -> None:
    with pytest.raises(ConfigError, match=r"expected a date \(2025-07-01\), a time back from now \(24h, 7d, 2w\)"):
        parse_when("--since", given)


@pytest.mark.parametrize("size", [-1, 1001, 100000])
def test_a_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ConfigError, match="expected 0 to 1000"):
        check_size(size)
