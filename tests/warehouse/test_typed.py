"""One spec per typed table: the spec, the tables the migrations made and the models agree."""

from __future__ import annotations

import pytest

from schemas.events import EVENT_MODELS
from warehouse.db import connect
from warehouse.typed import COMMON, SPEC, payload_shape


@pytest.fixture(scope="module")
def columns(tmp_path_factory):
    conn = connect(tmp_path_factory.mktemp("typed") / "w.duckdb")
    rows = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    conn.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in rows:
        out.setdefault(table, []).append((column, type_))
    return out


@pytest.mark.parametrize("event_type", sorted(SPEC))
def test_the_table_has_exactly_the_specs_columns_and_types(columns, event_type):
    spec = SPEC[event_type]
    expected = [(name, "VARCHAR") for name in COMMON[:2]] + [("occurred_at", "TIMESTAMP WITH TIME ZONE")]
    expected += [(col.name, col.type.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")) for col in spec.columns]
    assert columns[spec.table] == expected, "a migration and warehouse/typed.py disagree"


@pytest.mark.parametrize("event_type", sorted(SPEC))
def test_every_payload_field_lands_in_a_column(event_type):
    exprs = " ".join(col.expr for col in SPEC[event_type].columns)
    for field in payload_shape(event_type):
        assert f"p.{field}" in exprs, f"{event_type}.payload.{field} has no column in warehouse/typed.py"


def test_every_inbound_event_type_has_a_spec():
    inbound = {t for t in EVENT_MODELS if t not in ("outreach.requested", "clinical.alert")}
    assert set(SPEC) == inbound
