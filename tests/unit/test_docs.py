"""The documents promise what the code does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from ingest.cli import build_parser
from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.search_index.kibana import load_saved_objects
from ingest.search_index.query import COLLAPSE, FACETS, parse_filters, parse_when
from ingest.search_index.template import index_template

ROOT = Path(__file__).resolve().parents[2]
ANALYSTS = ROOT / "docs" / "analysts.md"

# docs/analysts.md conventions: Kibana queries in fenced ```kql blocks; saved objects cited as **title** (`id`);
# commands in fenced ```bash blocks; the facet table as | `facet` | `field` | … rows.
_SEARCH_EXAMPLE = re.compile(r"ingest search [^`\n#]+")
_FENCED = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_KQL_FIELD = re.compile(r"(?<![\w.*])([A-Za-z_][\w.]*)\s*(?::|<=|>=|<|>)")
_CITED = re.compile(r"\*\*([^*]+)\*\* \(`([a-z0-9-]+)`")
_OBJECT_ID = re.compile(r"`(ingest-news-[a-z0-9-]+)`")
_FACET_ROW = re.compile(r"^\| `(\w+)` \| `([\w.]+)` \|", re.MULTILINE)


def test_configuration_doc_names_every_setting() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    settings = Settings()
    missing = [
        f"INGEST_{section.upper()}__{key.upper()}"
        for section in Settings.model_fields
        for key in type(getattr(settings, section)).model_fields
        if f"`INGEST_{section.upper()}__{key.upper()}`" not in doc
    ]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for command in commands:
        assert f"ingest {command}" in readme, f"README does not document `ingest {command}`"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "\ntest:" in makefile and "\ndemo:" in makefile


def _fenced(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCED.findall(text) if lang == language]


def _mapped_fields(properties: dict[str, Any], prefix: str = "") -> set[str]:
    """Every searchable path of the mapping: objects walked (``places.geo``), multi-fields included
    (``url.wildcard``)."""
    fields: set[str] = set()
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            fields |= _mapped_fields(spec["properties"], f"{path}.")
            continue
        fields.add(path)
        fields |= {f"{path}.{sub}" for sub in spec.get("fields") or {}}
    return fields


def test_analysts_doc_has_every_readme_search_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    doc = ANALYSTS.read_text(encoding="utf-8")
    # The usage line of the command table (`ingest search QUERY [--facet F]...`) is a synopsis, not an example.
    examples = {e.strip() for e in _SEARCH_EXAMPLE.findall(readme) if "[" not in e}
    assert len(examples) >= 3, f"expected the README's search examples, found {examples}"
    missing = sorted(e for e in examples if e not in doc)
    assert not missing, f"docs/analysts.md does not translate {missing} into Kibana"


def test_analysts_doc_kql_names_only_mapped_fields() -> None:
    mapped = _mapped_fields(index_template("news")["template"]["mappings"]["properties"])
    blocks = _fenced(ANALYSTS.read_text(encoding="utf-8"), "kql")
    assert len(blocks) >= 10, "docs/analysts.md should give its Kibana queries in ```kql blocks"
    used = {field for block in blocks for field in _KQL_FIELD.findall(_QUOTED.sub('""', block))}
    assert {"language", "story_id", "i18n.fr.text", "canonical_url.wildcard", "published_at"} <= used
    unknown = sorted(used - mapped)
    assert not unknown, f"KQL in docs/analysts.md names fields index_template.json does not map: {unknown}"


def test_analysts_doc_cites_saved_objects_by_their_real_titles() -> None:
    doc = ANALYSTS.read_text(encoding="utf-8")
    # A data view shows its name; every other object its title.
    titles = {o["id"]: {o["attributes"].get("title"), o["attributes"].get("name")} for o in load_saved_objects()}
    cited = _CITED.findall(doc)
    assert cited, "docs/analysts.md cites no saved object as **title** (`id`)"
    wrong = [(title, obj_id) for title, obj_id in cited if title not in titles.get(obj_id, set())]
    assert not wrong, f"not in kibana.ndjson with that title: {wrong}"
    unknown = sorted(set(_OBJECT_ID.findall(doc)) - titles.keys())
    assert not unknown, f"docs/analysts.md names objects kibana.ndjson does not have: {unknown}"


def test_analysts_doc_describes_every_shipped_saved_object() -> None:
    cited = {obj_id for _, obj_id in _CITED.findall(ANALYSTS.read_text(encoding="utf-8"))}
    missing = sorted({o["id"] for o in load_saved_objects()} - cited)
    assert not missing, f"docs/analysts.md does not describe {missing}"


def test_analysts_doc_facet_table_is_the_cli_facets() -> None:
    rows = dict(_FACET_ROW.findall(ANALYSTS.read_text(encoding="utf-8")))
    assert rows == FACETS, "the facet table of docs/analysts.md differs from ingest.search_index.query.FACETS"
    assert set(COLLAPSE.values()) <= set(rows.values())


def test_analysts_doc_commands_are_ones_the_cli_accepts() -> None:
    parser = build_parser()
    lines = [line for block in _fenced(ANALYSTS.read_text(encoding="utf-8"), "bash")
             for line in block.splitlines() if line.startswith("ingest ")]
    assert any(line.startswith("ingest search ") for line in lines)
    refused = []
    for line in lines:
        try:
            args = parser.parse_args(shlex.split(line, comments=True)[1:])
            if args.command == "search":
                parse_filters(args.filter)
                parse_when("--since", args.since)
                parse_when("--until", args.until)
        except SystemExit:
            refused.append(f"{line}: argparse refused it (its message is on stderr)")
        except ConfigError as e:
            refused.append(f"{line}: {e}")
    assert not refused, f"docs/analysts.md shows commands ingest refuses: {refused}"
