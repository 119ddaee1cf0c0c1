"""`clinicflow sql` is a read-only boundary, and the analysts' quarantine carries no publisher strings.

Each attack here once worked (an analyst re-identified 50 of 50 patients with the secret read
from .env); each is refused with one line and exit 1.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clinicflow.cli import app
from core import settings as settings_mod
from stages.ingest import run_load
from tests.factories import event, raw


@pytest.fixture()
def analyst(settings, tmp_path, monkeypatch):
    """A loaded warehouse with its snapshot, a .env holding the secret, and the CLI pointed at them."""
    bad_field = event("consent.updated", patient_id="P0042")
    bad_field["payload"]["jane.doe@example.org"] = True
    bad_type = event("consent.updated", patient_id="P0043")
    bad_type["event_type"] = "P0043-mrn-778812"
    bad_id = event("consent.updated")
    bad_id["event_id"] = "P0044"
    value_in_msg = event("intake.assessed", patient_id="P0045")
    value_in_msg["payload"]["blood_pressure"] = {"systolic": 80, "diastolic": 91}
    f = tmp_path / "h.jsonl"
    f.write_bytes(
        b"\n".join([raw(event("patient.registered")), raw(bad_field), raw(bad_type), raw(bad_id), raw(value_in_msg)])
        + b"\n"
    )
    run_load(settings, f)
    (tmp_path / ".env").write_text("CLINICFLOW_PSEUDONYM_SECRET=the-secret\n")
    monkeypatch.setenv("CLINICFLOW_WAREHOUSE_PATH", str(settings.warehouse_path))
    monkeypatch.setenv("CLINICFLOW_PSEUDONYM_SECRET", "x" * 40)
    settings_mod.get_settings.cache_clear()
    yield settings, tmp_path
    settings_mod.get_settings.cache_clear()


def sql(query: str):
    return CliRunner().invoke(app, ["sql", query, "--json"])


def test_an_ordinary_query_works(analyst):
    result = sql("SELECT count(*) AS n FROM patients")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"n": 1}


@pytest.mark.parametrize(
    "query,says",
    [
        ("ATTACH '{warehouse}' AS w (READ_ONLY)", "ATTACH statements are not allowed"),
        ("SELECT * FROM read_csv('{home}/.env')", "refused"),
        ("SELECT * FROM read_text('{home}/.env')", "refused"),
        ("SELECT * FROM '{warehouse}'", "refused"),
        ("COPY patients TO '{home}/copy.csv'", "COPY statements are not allowed"),
        ("SELECT 1; COPY patients TO '{home}/copy.csv'", "2 statements"),
        ("SET enable_external_access = true", "SET statements are not allowed"),
        ("SELECT * FROM glob('{home}/*')", "refused"),
        ("INSTALL httpfs", "not allowed"),
        ("LOAD httpfs", "not allowed"),
        ("CREATE TABLE stolen AS SELECT 1", "CREATE statements are not allowed"),
        ("SELECT 1; SELECT 2", "2 statements"),
    ],
)
def test_reaching_past_the_snapshot_is_refused(analyst, query, says):
    settings, home = analyst
    result = sql(query.format(warehouse=settings.warehouse_path, home=home))
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert not (home / "copy.csv").exists()


def test_the_analysts_quarantine_holds_no_publisher_strings(analyst):
    result = sql('SELECT error_kind, errors, event_id, event_type FROM quarantine ORDER BY "offset"')
    assert result.exit_code == 0, result.output
    text = result.stdout
    for secret in ("jane.doe", "example.org", "P0043", "mrn", "P0044", "diastolic 91", "systolic 80"):
        assert secret not in text, (secret, text)
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 4
    errors = [json.loads(r["errors"]) for r in rows]
    assert {"loc": "payload.<field not in the contract>", "msg": "field not in the contract"} in errors[0]
    assert rows[0]["event_type"] == "consent.updated" and rows[0]["event_id"] is not None
    assert rows[1]["event_type"] is None, "an unknown event_type may be an identifier"
    assert rows[2]["event_id"] is None, "an event_id that is no UUID may be an identifier"
    assert errors[3] == [{"loc": "payload.blood_pressure.diastolic", "msg": "breaks a rule of the contract"}]
