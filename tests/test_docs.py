"""The reference pages generated from the code (docs/reference.py) are current, and every setting and
command is in them (datasette's test_docs.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from km_search.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _reference():
    spec = importlib.util.spec_from_file_location("km_docs_reference", DOCS / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference()


@pytest.mark.parametrize("page", sorted(REFERENCE.PAGES))
def test_generated_page_is_current(page):
    expected = REFERENCE.PAGES[page]()
    assert (DOCS / page).read_text(encoding="utf-8") == expected, f"docs/{page} is stale: run `make docs`"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    field = Settings.model_fields[name]
    assert field.description, f"KM_{name.upper()} has no description in km_search/settings.py"
    assert f"`KM_{name.upper()}`" in REFERENCE.configuration_md()


def test_every_command_is_in_the_cli_reference():
    import typer.main

    from km_search.cli.app import app

    page = REFERENCE.cli_md()
    commands = typer.main.get_command(app).commands
    assert {"ingest", "search", "serve", "ask", "keys"} <= set(commands)
    for name in commands:
        assert f"## `km {name}`" in page


def test_docs_links_resolve():
    """Every relative link of README.md and docs/*.md names a file that exists."""
    import re

    root = DOCS.parent
    broken = []
    for page in [root / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)} -> {target}")
    assert broken == []
