"""The docs in the repository are complete for someone who has only the clone.

A publisher finds every event type and field, an analyst every view, an operator every verb;
nothing links outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from clinicflow.cli import app
from schemas.common import models_in
from schemas.events import EVENT_MODELS, FAMILIES
from warehouse.db import connect
from warehouse.dictionary import VIEWS

DOCS = Path("docs")
EVENTS = (DOCS / "EVENTS.md").read_text()


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_every_event_type_is_documented_with_its_payload_fields(event_type):
    assert f"`{event_type}`" in EVENTS
    for model in models_in(EVENT_MODELS[event_type].model_fields["payload"].annotation):
        for name in model.model_fields:
            assert f"`{name}`" in EVENTS, f"{event_type}: field {name} is not in docs/EVENTS.md"


def test_every_topic_family_and_envelope_field_is_documented():
    for family in FAMILIES:
        assert f"clinic.{family}.v1" in EVENTS
    for name in EVENT_MODELS["consent.updated"].model_fields:
        assert f"`{name}`" in EVENTS


def test_every_view_is_documented(tmp_path):
    conn = connect(tmp_path / "w.duckdb")
    views = [
        r[0] for r in conn.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'analytics'").fetchall()
    ]
    conn.close()
    dictionary = (DOCS / "DATA_DICTIONARY.md").read_text()
    for view in views:
        assert view in VIEWS and f"analytics.{view}" in dictionary, view


def verbs(group: typer.Typer, prefix: str = "") -> list[str]:
    click_group = typer.main.get_command(group)
    out = []
    for name, command in click_group.commands.items():
        if hasattr(command, "commands"):
            out += [f"{prefix}{name} {sub}" for sub in command.commands]
        else:
            out.append(f"{prefix}{name}")
    return out


@pytest.mark.parametrize("verb", verbs(app))
def test_every_cli_verb_is_documented(verb):
    cli = (DOCS / "CLI.md").read_text()
    first, *rest = verb.split()
    assert re.search(rf"`{re.escape(first)}\b", cli), f"{verb} is not in docs/CLI.md"
    for sub in rest:
        assert sub in cli, f"{verb} is not in docs/CLI.md"


def test_docs_link_only_inside_the_repository():
    for path in [Path("README.md"), *DOCS.glob("*.md")]:
        text = path.read_text()
        assert "../shared" not in text, path
        for target in re.findall(r"\]\(([^)#]+)", text):
            if not target.startswith(("http://", "https://")):
                assert (path.parent / target).exists(), f"{path} links to {target}, which is not in the repository"
