"""Bad settings, hostile input and secrets, as a person meets them on the command line: one line, the documented
exit code (2 settings or input, 3 a service), no traceback, no password; each bad input in a process under a
1 GB memory limit, so that a regression fails instead of swapping."""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.embedded.services import free_port, spawn_redis
from tests.integration.test_cli import INGEST, _clean_env, settings_env

GB = 1 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (GB, GB))


def _run(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*INGEST, *args], env=_clean_env() | env, input=stdin, capture_output=True, timeout=120,
                            preexec_fn=_limited, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(errors="replace"),
                                       result.stderr.decode(errors="replace"))


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Redis that wants a password (s3cret-pass-77)."""
    port = free_port()
    proc = spawn_redis(port, tmp_path_factory.mktemp("locked-redis"))
    redis.Redis(port=port).config_set("requirepass", "s3cret-pass-77")
    yield port
    proc.terminate()
    proc.wait(10)


def test_bad_settings_are_listed_one_per_line_with_exit_2(tmp_path: Path) -> None:
    env = {"INGEST_PIPELINE__BATCH_SIZE": "abc", "INGEST_HTTP__TIMEOUTT": "3",
           "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    result = _run(["status"], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "ingest: error: bad settings (fix or unset them):",
        "  INGEST_HTTP__TIMEOUTT: not a setting; did you mean INGEST_HTTP__TIMEOUT?",
        "  INGEST_PIPELINE__BATCH_SIZE='abc': Input should be a valid integer, unable to parse string as an integer",
    ]


def test_a_wrong_redis_password_is_named_as_such_and_never_printed(locked_redis: int, tmp_path: Path) -> None:
    env = {"INGEST_REDIS__URL": f"redis://:wrong-pass-99@127.0.0.1:{locked_redis}/0",
           "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    result = _run(["status"], env)
    line = _one_line(result)
    assert result.returncode == 2 and "refused the credentials" in line and "wrong-pass-99" not in line
    assert f"redis://:***@127.0.0.1:{locked_redis}/0" in line


def test_a_database_the_server_lacks_is_named(locked_redis: int, tmp_path: Path) -> None:
    env = {"INGEST_REDIS__URL": f"redis://:s3cret-pass-77@127.0.0.1:{locked_redis}/99",
           "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    result = _run(["status"], env)
    line = _one_line(result)
    assert result.returncode == 2 and "DB index is out of range" in line and "s3cret-pass-77" not in line


def test_a_redis_url_pointing_at_another_kind_of_server_says_so(fixture_server: FixtureServer,
                                                                tmp_path: Path) -> None:
    port = fixture_server.base_url.rsplit(":", 1)[1].strip("/")
    env = {"INGEST_REDIS__URL": f"redis://:pw-1234-xyz@127.0.0.1:{port}/0", "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    result = _run(["status"], env)
    line = _one_line(result)
    assert result.returncode == 3 and "does not speak Redis" in line and "pw-1234-xyz" not in line


def test_credentials_in_service_urls_are_never_printed(tmp_path: Path) -> None:
    dead = free_port()
    env = {"INGEST_REDIS__URL": f"redis://user:pw-5678-abc@127.0.0.1:{dead}/0",
           "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    line = _one_line(result := _run(["status"], env))
    assert result.returncode == 3 and "not reachable" in line and "pw-5678-abc" not in line and "user:***@" in line
    env = {"INGEST_ELASTICSEARCH__HOSTS": json.dumps([f"http://elastic:pw-9012-def@127.0.0.1:{dead}"]),
           "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}
    line = _one_line(result := _run(["search", "drone"], env))
    assert result.returncode == 3 and "pw-9012-def" not in line and "elastic:***@" in line
    result = _run(["kibana", "setup", "--url", f"http://kb:pw-3456-ghi@127.0.0.1:{dead}"],
                  {"INGEST_EMBEDDED__STATE_DIR": str(tmp_path)})
    assert result.returncode == 3 and "pw-3456-ghi" not in result.stderr + result.stdout


def test_a_gzip_bomb_and_a_huge_page_are_refused_before_they_are_in_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.html.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        zeros = b"\0" * (1 << 20)
        for _ in range(1024):  # 1 GB once decompressed, 1 MB on disk
            f.write(zeros)
    huge = tmp_path / "huge.html"
    huge.write_bytes(b"<html><body>" + b"<p>words and words</p>" * 2_500_000 + b"</body></html>")  # 55 MB
    result = _run(["extract", str(bomb), str(huge)], {"INGEST_EMBEDDED__STATE_DIR": str(tmp_path)})
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(bomb), str(huge)]
    assert all(row["error"].startswith("too_large") and "INGEST_HTTP__MAX_BYTES" in row["error"] for row in rows)
    assert "once decompressed" in rows[0]["error"] and "once decompressed" not in rows[1]["error"]


@pytest.mark.parametrize("command", [["entities", "--lang", "fr"], ["cluster"]])
def test_input_that_is_not_utf8_is_named_with_its_line(command: list[str], settings: Settings,
                                                       tmp_path: Path) -> None:
    data = json.dumps({"id": "a", "text": "Une phrase."}).encode() + b"\n" + b'{"id": "b", "text": "caf\xe9"}\n'
    result = _run([*command, "-"], settings_env(settings, tmp_path), stdin=data)
    line = _one_line(result)
    assert result.returncode == 2 and "-:2: not UTF-8 text (byte 0xe9" in line


def test_a_feed_registry_that_is_not_text_is_named(tmp_path: Path) -> None:
    registry = tmp_path / "feeds.yaml"
    registry.write_bytes(b"feeds:\n  - id: a\n    url: http://example.org/\xff\xfe\x00rss\n")
    line = _one_line(result := _run(["feeds", "check", "--feeds", str(registry)],
                                    {"INGEST_EMBEDDED__STATE_DIR": str(tmp_path)}))
    assert result.returncode == 2 and f"{registry}:3: not UTF-8 text" in line
