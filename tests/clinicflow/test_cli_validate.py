import json

from typer.testing import CliRunner

from clinicflow.cli import app
from tests.factories import event, raw

runner = CliRunner()


def test_validate_gives_a_verdict_per_line(tmp_path):
    good = event("session.completed")
    lines = [
        raw(good),
        b"{oops",
        raw(event("session.completed", dose_mg=83)),
        raw({**event("consent.updated"), "event_type": "patient.deleted"}),
        raw({**event("consent.updated"), "schema_version": 2}),
        b"",
        raw(event("checkin.completed")),
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["validate", str(f), "--as-of", "2026-03-01T12:00:00Z"])
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["line"] for v in out] == [1, 2, 3, 4, 5, 6, 7]
    assert out[0] == {
        "line": 1,
        "valid": True,
        "event_type": "session.completed",
        "event_id": good["event_id"],
        "error_kind": None,
        "errors": [],
    }
    assert [v["error_kind"] for v in out] == [
        None,
        "malformed_json",
        "schema",
        "unknown_event_type",
        "unsupported_version",
        "malformed_json",
        None,
    ]
    assert out[1]["event_type"] is None and out[1]["event_id"] is None
    assert out[2]["errors"][0]["loc"] == "payload.dose_mg" and out[2]["event_type"] == "session.completed"


def test_validate_reads_stdin_and_exits_0_when_all_valid():
    data = raw(event("consent.updated")) + b"\n" + raw(event("rems.enrolled")) + b"\n"
    result = runner.invoke(app, ["validate", "-", "--as-of", "2026-03-01T12:00:00Z"], input=data)
    assert result.exit_code == 0, result.output
    assert all(json.loads(line)["valid"] for line in result.stdout.splitlines())


def test_validate_missing_file_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_bad_as_of_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["validate", "-", "--as-of", "yesterday"], input=b"")
    assert result.exit_code == 2
