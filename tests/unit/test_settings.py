"""Settings validated at start: every bad or unknown ``INGEST_*`` variable is one line naming it, its value (secrets
hidden) and what is expected; secrets never appear in a message."""

from __future__ import annotations

import pytest

from ingest.config import load_settings, setting_names
from ingest.errors import ConfigError, ServiceUnavailableError
from ingest.redact import redact


def _problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()
    assert lines[0] == "bad settings (fix or unset them):"
    return [line.strip() for line in lines[1:]]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("INGEST_PIPELINE__BATCH_SIZE", "abc", "valid integer"),
    ("INGEST_PIPELINE__BATCH_SIZE", "0", "greater than or equal to 1"),
    ("INGEST_HTTP__ALLOW_PRIVATE", "maybe", "valid boolean"),
    ("INGEST_HTTP__TIMEOUT", "-1", "greater than 0"),
    ("INGEST_ELASTICSEARCH__HOSTS", "[]", "at least 1 item"),
    ("INGEST_ELASTICSEARCH__HOSTS", '["127.0.0.1:9200"]', "is not an http:// or https:// URL"),
    ("INGEST_ELASTICSEARCH__SERVER_MODE", "bogus", "'stack' or 'serverless'"),
    ("INGEST_ELASTICSEARCH__INDEX_PREFIX", "News", "should match pattern"),
    ("INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS", "0", "greater than or equal to 1"),
    ("INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS", "1025", "less than or equal to 1024"),
    ("INGEST_ELASTICSEARCH__NUMBER_OF_REPLICAS", "-1", "greater than or equal to 0"),
    ("INGEST_REDIS__URL", "http://127.0.0.1:6379/0", "expected redis://"),
    ("INGEST_REDIS__URL", "redis://127.0.0.1:99999/0", "port is not a number from 1 to 65535"),
    ("INGEST_REDIS__URL", "redis://127.0.0.1:6379/x", "database 'x' is not a number"),
    ("INGEST_NLP__GAZETTEER_MIN_POPULATION", "2000", "500, 1000, 5000 or 15000"),
])
def test_a_bad_value_is_one_line_with_name_value_and_expectation(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    (line,) = _problems(monkeypatch, **{name: value})
    assert line.startswith(f"{name}={value!r}") and expected in line, line


def test_a_list_that_is_not_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = _problems(monkeypatch, INGEST_ELASTICSEARCH__HOSTS="http://127.0.0.1:9200")
    assert line.startswith("INGEST_ELASTICSEARCH__HOSTS=") and "not JSON" in line and '["http' in line


def test_misspelt_and_unknown_variables_are_refused_with_the_closest_name(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _problems(monkeypatch, INGEST_HTTP__TIMEOUTT="3", INGEST_BOGUS__X="1", INGEST_PIPELINE__BATCH_SIZE="0")
    assert len(lines) == 3
    assert "INGEST_HTTP__TIMEOUTT: not a setting; did you mean INGEST_HTTP__TIMEOUT?" in lines
    assert any(line.startswith("INGEST_BOGUS__X: not a setting") for line in lines)
    assert any(line.startswith("INGEST_PIPELINE__BATCH_SIZE='0'") for line in lines)


def test_every_setting_and_the_test_suites_own_variables_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_TEST_AIRFLOW_HOME", "/tmp/x")
    monkeypatch.setenv("ingest_http__timeout", "3")  # names are not case-sensitive, as pydantic reads them
    assert load_settings().http.timeout == 3
    assert "INGEST_REDIS__URL" in setting_names() and len(setting_names()) > 60


def test_secret_values_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = _problems(monkeypatch, INGEST_REDIS__URL="redis://:hunter22@127.0.0.1:99999/0")
    assert "hunter22" not in line and ":***@" in line
    (line,) = _problems(monkeypatch, INGEST_REDIS__URL="redis://127.0.0.1:6379/0",
                        INGEST_ELASTICSEARCH__HOSTS='["ftp://elastic:s3cr3tpw@es:9200"]')
    assert "s3cr3tpw" not in line


def test_redaction_hides_passwords_in_urls_pairs_and_registered_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("Redis is not reachable at redis://:pw1234@h:6379/0") == \
        "Redis is not reachable at redis://:***@h:6379/0"
    assert redact("https://elastic:changeme@es.example:9200, http://kb") == "https://elastic:***@es.example:9200, http://kb"
    assert redact("api_key=abcd1234&x=1 password: 'zz99zz'") == "api_key=***&x=1 password: '***'"
    monkeypatch.setenv("INGEST_ELASTICSEARCH__API_KEY", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
    load_settings()  # registers the settings' secrets
    error = ServiceUnavailableError("the search server", "http://es:9200",
                                    "auth VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw== refused")
    assert "VnVhQ2Z" not in str(error) and "***" in str(error)
