"""The documents promise what the code does."""

from __future__ import annotations

from pathlib import Path

from ingest.cli import build_parser
from ingest.config import Settings

ROOT = Path(__file__).resolve().parents[2]


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
