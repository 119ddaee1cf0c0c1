import pytest
from pydantic import ValidationError

from core.errors import SettingsError
from core.settings import Settings, load_settings


def test_defaults_follow_the_contract(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    s = load_settings()
    assert s.all_topics == (
        "clinic.intake.v1",
        "clinic.sessions.v1",
        "clinic.followups.v1",
        "clinic.alertactions.v1",
        "clinic.outreach.v1",
        "clinic.alerts.v1",
        "clinic.dlq.v1",
    )
    assert str(s.warehouse_path) == "var/clinic.duckdb"
    assert s.uses_local_broker and s.bootstrap_servers == "127.0.0.1:19092"


def test_env_and_dotenv_are_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(Settings.model_config, "env_file", ".env")
    (tmp_path / ".env").write_text("CLINICFLOW_BATCH_MAX_EVENTS=77\n")
    monkeypatch.setenv("CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    s = load_settings()
    assert s.batch_max_events == 77
    assert not s.uses_local_broker and s.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_out_of_bounds_value_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLINICFLOW_BATCH_MAX_EVENTS", "0")
    with pytest.raises(SettingsError, match="CLINICFLOW_BATCH_MAX_EVENTS"):
        load_settings()


def test_misspelt_variable_fails_loudly(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLINICFLOW_WAREHOUSE_PATHH", "x.duckdb")
    with pytest.raises(SettingsError, match="CLINICFLOW_WAREHOUSE_PATHH"):
        load_settings()


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError):
        s.batch_max_events = 3


def test_secrets_never_show_in_repr():
    s = Settings(
        pseudonym_secret="x" * 40,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="hunter2-hunter2",
    )
    assert "hunter2" not in repr(s) and "x" * 40 not in repr(s)
    assert "hunter2" not in s.model_dump_json()


def test_sasl_without_credentials_is_refused():
    with pytest.raises(ValidationError, match="SASL"):
        Settings(kafka_security_protocol="SASL_SSL")


def test_missing_pseudonym_secret_fails_when_needed():
    with pytest.raises(SettingsError, match="CLINICFLOW_PSEUDONYM_SECRET"):
        Settings().pseudonym_key()


def test_short_pseudonym_secret_is_refused():
    with pytest.raises(ValidationError, match="32"):
        Settings(pseudonym_secret="short")


def test_settings_doc_is_current():
    from pathlib import Path

    from core.settings import settings_markdown

    assert Path("docs/SETTINGS.md").read_text() == settings_markdown(), (
        "docs/SETTINGS.md is stale: run `clinicflow settings --markdown > docs/SETTINGS.md`"
    )
