from __future__ import annotations

from pathlib import Path

import pytest

from goldloop.settings import (
    Settings,
    SettingsError,
    env_name,
    load_settings,
    redact_url,
    setting_fields,
    settings_markdown,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_cli_args_beat_env_beat_defaults() -> None:
    env = {"GOLDLOOP_PORT": "9000", "GOLDLOOP_HOST": "0.0.0.0"}
    s = load_settings({"port": 9100, "host": None}, environ=env)
    assert s.port == 9100  # argument wins
    assert s.host == "0.0.0.0"  # env beats default; None argument means "not given"
    assert load_settings({}, environ={}).port == Settings().port


def test_bool_and_path_coercion() -> None:
    s = load_settings(
        {}, environ={"GOLDLOOP_WORKERS_IN_PROCESS": "false", "GOLDLOOP_DATA_DIR": "/tmp/x"}
    )
    assert s.workers_in_process is False
    assert s.data_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"GOLDLOOP_PORT": "eighty"}, "GOLDLOOP_PORT"),
        ({"GOLDLOOP_PORT": "70000"}, "not a TCP port"),
        ({"GOLDLOOP_WORKERS_IN_PROCESS": "maybe"}, "expected true or false"),
        ({"GOLDLOOP_DATABASE_URL": "mysql://x"}, "only sqlite"),
        ({"GOLDLOOP_LOG_LEVEL": "loud"}, "debug, info"),
        ({"GOLDLOOP_MAX_REQUEST_BYTES": "0"}, "must be positive"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings({}, environ=env)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(SettingsError, match="unknown settings: nope"):
        load_settings({"nope": 1}, environ={})


def test_postgres_url_selects_psycopg_and_is_redacted() -> None:
    s = load_settings({"database_url": "postgresql://u:secret@h:5432/db"}, environ={})
    assert s.effective_database_url == "postgresql+psycopg://u:secret@h:5432/db"
    assert "secret" not in s.redacted_database_url()
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for f in setting_fields():
        assert f.metadata.get("help"), f"setting {f.name} has no help text"
        assert env_name(f.name) in text, f"{env_name(f.name)} missing from docs/configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOCS.read_text() == settings_markdown(), (
        "docs/configuration.md is stale: run `goldloop settings --markdown > docs/configuration.md`"
    )
