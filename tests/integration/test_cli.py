"""The `ingest` command as a person runs it: real processes, real services, exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.embedded.services import free_port
from ingest.stores.elasticsearch import build_es_client
from ingest.stores.redis import RedisPendingQueue, connect_redis
from tests.conftest import demo_feeds, shared_fixtures

INGEST = [sys.executable, "-m", "ingest.cli"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}


def run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = _clean_env()
    full_env.update(env or {})
    return subprocess.run([*INGEST, *args], capture_output=True, text=True, env=full_env, input=stdin,
                          timeout=timeout, check=False)


def settings_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "INGEST_REDIS__URL": settings.redis.url,
        "INGEST_REDIS__PREFIX": settings.redis.prefix,
        "INGEST_REDIS__CLUSTER": str(settings.redis.cluster).lower(),
        "INGEST_ELASTICSEARCH__HOSTS": json.dumps(settings.elasticsearch.hosts),
        "INGEST_ELASTICSEARCH__SERVER_MODE": settings.elasticsearch.server_mode,
        "INGEST_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
        "INGEST_HTTP__ALLOW_PRIVATE": "true",
        "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS": "0",
        "INGEST_EMBEDDED__STATE_DIR": str(tmp_path / "state"),
    }


def test_help_lists_every_command() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("demo", "poll", "process", "run", "search", "extract", "entities", "cluster", "status",
                    "dlq", "index", "services", "stop"):
        assert command in result.stdout


def test_entities_on_the_sample_article_finds_the_gold_mentions() -> None:
    seed = shared_fixtures() / "seed"
    text = (seed / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    gold = json.loads((seed / "izhevsk_drone_attack_fr.entities.json").read_text(encoding="utf-8"))
    result = run(["entities", "--lang", "auto", "-"], stdin=json.dumps({"id": "seed", "text": text}) + "\n")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["id"] == "seed" and row["language"] == "fr"
    for m in row["mentions"]:
        assert text[m["start"]:m["end"]] == m["text"]  # offsets point into the input text
    found = {(m["text"], m["label"]) for m in row["mentions"]}
    expected = {(surface, label) for label, forms in gold["mentions"].items() for surface in forms}
    hits = len(expected & found)
    print(f"gold mentions found with the right label: {hits}/{len(expected)}; missing {expected - found}")
    assert hits >= 18
    by_name = {e["name"]: e for e in row["entities"]}
    assert set(by_name["Vladimir Poutine"]["mentions"]) == {"Vladimir Poutine", "Poutine"}
    assert by_name["Vladimir Poutine"]["count"] == sum(1 for m in row["mentions"] if "Poutine" in m["text"])


def test_entities_english_and_other_languages() -> None:
    lines = [
        {"id": 1, "text": "Joe Biden met Emmanuel Macron in Paris on Tuesday, the White House said.", "lang": "en"},
        {"id": 2, "text": "Der Bundeskanzler traf sich in Berlin mit dem Präsidenten."},
    ]
    result = run(["entities"], stdin="\n".join(json.dumps(x) for x in lines))
    assert result.returncode == 0, result.stderr
    english, german = (json.loads(line) for line in result.stdout.splitlines())
    assert {("Joe Biden", "PER"), ("Paris", "LOC")} <= {(m["text"], m["label"]) for m in english["mentions"]}
    assert german["language"] == "de" and german["mentions"] == []


def test_entities_rejects_bad_input_with_one_line() -> None:
    result = run(["entities", "-"], stdin="not json\n")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "-:1: not a JSON object" in result.stderr


def test_extract_saved_pages(tmp_path: Path) -> None:
    fixtures = shared_fixtures()
    page = fixtures / "pages" / "fundus" / "fr" / "LeMonde_2023_09_01.html.gz"
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body></body></html>")
    result = run(["extract", str(page), str(empty), "--url", "https://www.lemonde.fr/politique/article/x.html"])
    assert result.returncode == 0, result.stderr
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert good["title"].startswith("Sophie Binet met en garde Emmanuel Macron")
    assert good["language"] == "fr" and good["published_at"].startswith("2023-08-30")
    assert "Bertrand Bissuel" in good["authors"]
    assert len(good["text"]) > 2000
    assert good["published_source"] == "json_ld" and good["language_declared"] == "fr"
    assert set(good) == {"path", "url", "canonical_url", "title", "text", "summary", "authors", "published_at",
                         "published_source", "modified_at", "language", "language_declared", "language_detected",
                         "site_name", "tags", "image_url", "paywalled"}
    assert bad["path"] == str(empty) and "extraction_empty" in bad["error"]


def test_cluster_levels_with_the_pipelines_store(settings: Settings, redis_client: object, tmp_path: Path) -> None:
    seed = (shared_fixtures() / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    paras = [p for p in seed.splitlines() if p.strip()]
    rows = [
        {"id": "a", "text": seed, "lang": "fr", "published": "2025-07-01T09:00:00+02:00"},
        {"id": "b", "text": "Le merlu de l'Atlantique Nord a été sauvé de l'extinction par les quotas européens, "
                            "selon un rapport du Conseil international pour l'exploration de la mer.", "lang": "fr"},
        {"id": "c", "text": seed.upper(), "lang": "fr"},  # the same normalised text
        {"id": "d", "text": "Par la rédaction, avec AFP\n" + "\n".join(paras[:4]), "lang": "fr",
         "published": "2025-07-01"},  # a teaser
        # Its words in another order (the same keywords, no shingle in common): the same story the next day, a
        # story of its own a month later (a story is an event), one without a date by the words alone.
        {"id": "e", "text": " ".join(sorted(seed.split())), "lang": "fr", "published": "2025-07-02"},
        {"id": "f", "text": " ".join(sorted(seed.split(), reverse=True)), "lang": "fr", "published": "2025-08-01"},
        {"id": "g", "text": " ".join(sorted(seed.split(), key=len)), "lang": "fr"},
    ]
    env = settings_env(settings, tmp_path)
    result = run(["cluster", "-"], stdin="\n".join(json.dumps(r) for r in rows), env=env)
    assert result.returncode == 0, result.stderr
    out = {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert list(out) == ["a", "b", "c", "d", "e", "f", "g"]
    assert (out["a"]["story_id"], out["a"]["duplicate_of"], out["a"]["kind"]) == ("a", None, "new")
    assert (out["b"]["story_id"], out["b"]["duplicate_of"]) == ("b", None)
    assert (out["c"]["story_id"], out["c"]["duplicate_of"], out["c"]["kind"]) == ("a", "a", "exact")
    assert (out["d"]["story_id"], out["d"]["duplicate_of"], out["d"]["kind"]) == ("a", "a", "duplicate")
    assert (out["e"]["story_id"], out["e"]["kind"]) == ("a", "story")
    assert (out["f"]["story_id"], out["f"]["kind"]) == ("f", "new")
    assert (out["g"]["story_id"], out["g"]["kind"]) == ("a", "story")
    # It kept nothing: the pipeline's namespace is untouched and its own was deleted.
    assert not list(redis_client.scan_iter(f"{settings.redis.prefix}:*"))  # type: ignore[attr-defined]

    bad = run(["cluster", "-"], stdin=json.dumps({"id": "x"}) + "\n", env=env)
    assert bad.returncode != 0 and 'no "text"' in bad.stderr
    undated = run(["cluster", "-"], stdin=json.dumps({"text": "x", "published": "last Tuesday"}) + "\n", env=env)
    assert undated.returncode == 2 and '"published" is not an ISO 8601 date' in undated.stderr
    assert "Traceback" not in undated.stderr
    no_url = run(["cluster", "-"], stdin=json.dumps({"text": "x", "url": 5}) + "\n", env=env)
    assert no_url.returncode == 2 and '-:1: "url" is not a string' in no_url.stderr


def test_run_then_search_json(settings: Settings, feed_base_url: str, tmp_path: Path) -> None:
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in demo_feeds(feed_base_url)]}))
    env = settings_env(settings, tmp_path)
    result = run(["run", "--feeds", str(feeds_file)], env=env)
    assert result.returncode == 0, result.stderr
    assert "indexed=7" in result.stdout and "dead_lettered=1" in result.stdout

    found = run(["search", "Izhevsk", "--facet", "persons", "--facet", "source", "--json"], env=env)
    assert found.returncode == 0, found.stderr
    body = json.loads(found.stdout)
    assert body["total"] == 1
    hit = body["hits"][0]
    assert set(hit) == {"id", "title", "url", "source", "feed", "published_at", "score", "highlight", "story_id",
                         "story_size"}
    assert any("Izhevsk" in h for h in hit["highlight"])
    assert "Vladimir Poutine" in [f["value"] for f in body["facets"]["persons"]]

    filtered = run(["search", "*", "--filter", "language=en", "--facet", "language", "--json"], env=env)
    assert json.loads(filtered.stdout)["facets"]["language"] == [{"value": "en", "count": 3}]

    status = run(["status", "--json"], env=env)
    assert json.loads(status.stdout)["dead_letters"] == 1
    dlq = run(["dlq", "list"], env=env)
    assert "  http_4xx (fetch, delivered 1 time)  http" in dlq.stdout.splitlines()[0]
    assert dlq.stdout.splitlines()[1].strip() == "HTTP 404"  # what failed, said once
    assert json.loads(run(["dlq", "list", "--json"], env=env).stdout.splitlines()[0])["reason"] == "http_4xx"
    assert run(["dlq", "list", "--reason", "nothing"], env=env).stdout == "no dead letters of reason nothing\n"


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["search", "x", "--filter", "nofield=1"], {}, 2, "unknown facet or filter field 'nofield'"),
        (["poll", "--feeds", "/nonexistent/feeds.yaml"], {}, 2, "/nonexistent/feeds.yaml does not exist"),
        (["poll"], {"INGEST_REDIS__URL": "redis://127.0.0.1:1/0", "INGEST_FEEDS__PATH": "-"}, 2, "does not exist"),
        (["process"], {"INGEST_REDIS__URL": "redis://127.0.0.1:1/0"}, 3, "Redis is not reachable at"),
        (["search", "x"], {"INGEST_ELASTICSEARCH__HOSTS": '["http://127.0.0.1:1"]'}, 3, "search server is not"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    args: list[str], env: dict[str, str], code: int, message: str, tmp_path: Path
) -> None:
    env = {"INGEST_EMBEDDED__STATE_DIR": str(tmp_path), **env}
    result = run(args, env=env, timeout=60)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def demo_env(tmp_path: Path) -> dict[str, str]:
    """The demo on ports and a state folder of its own, its registry pointed at its feed server's port."""
    feeds_port = free_port()
    registry = (Path(__file__).resolve().parents[2] / "src/ingest/embedded/demo_data/feeds.yaml").read_text()
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(registry.replace("127.0.0.1:8765", f"127.0.0.1:{feeds_port}"))
    return {
        "INGEST_EMBEDDED__STATE_DIR": str(tmp_path / "state"),
        "INGEST_EMBEDDED__REDIS_PORT": str(free_port()),
        "INGEST_EMBEDDED__SEARCH_PORT": str(free_port()),
        "INGEST_EMBEDDED__FEEDS_PORT": str(feeds_port),
        "INGEST_FEEDS__PATH": str(feeds_file),
    }


def test_demo_twice_indexes_nothing_twice(tmp_path: Path) -> None:
    """`ingest demo` with its own ports: services start, stay up for `ingest search`, are reused, then stop."""
    env = demo_env(tmp_path)
    try:
        first = run(["demo"], env=env)
        assert first.returncode == 0, first.stderr
        assert "holds 7 article(s)" in first.stdout
        assert "Vladimir Poutine" in first.stdout
        second = run(["demo"], env=env)
        assert second.returncode == 0, second.stderr
        assert "holds 7 article(s)" in second.stdout and "queued=0" in second.stdout
        found = run(["search", "Izhevsk", "--facet", "persons", "--json"], env=env)
        persons = [f["value"] for f in json.loads(found.stdout)["facets"]["persons"]]
        assert "Vladimir Poutine" in persons
    finally:
        stopped = run(["stop"], env=env)
    assert "redis" in stopped.stdout and "search" in stopped.stdout
    assert "no embedded service is running" in run(["services", "status"], env=env).stdout


def test_after_the_demo_every_command_and_the_python_api_reach_its_services(tmp_path: Path) -> None:
    """No INGEST_* variable names a server: `ingest status`, `ingest cluster` and `ingest.search()` find the
    embedded services a demo left running (resolve_settings), as `ingest search` always did."""
    env = demo_env(tmp_path)
    try:
        assert run(["demo"], env=env).returncode == 0
        status = run(["status", "--json"], env=env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["last_hour"]["index/indexed"] == 7
        text = "Une attaque de drones a frappé l'usine Kupol à Izhevsk, trois morts."
        texts = [{"id": "a", "text": text, "lang": "fr"}, {"id": "b", "text": text, "lang": "fr"}]
        clustered = run(["cluster"], env=env, stdin="".join(json.dumps(t) + "\n" for t in texts))
        assert clustered.returncode == 0, clustered.stderr
        assert [json.loads(line)["kind"] for line in clustered.stdout.splitlines()] == ["new", "exact"]
        api = subprocess.run(
            [sys.executable, "-c", "import ingest; print(ingest.search('Izhevsk', facets=['persons']).total)"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}, **env})
        assert api.returncode == 0, api.stderr
        assert int(api.stdout) == 1
    finally:
        run(["stop"], env=env)


def test_the_python_api_names_a_search_server_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest
    from ingest.errors import ServiceUnavailableError

    monkeypatch.setenv("INGEST_ELASTICSEARCH__HOSTS", json.dumps([f"http://127.0.0.1:{free_port()}"]))
    with pytest.raises(ServiceUnavailableError, match=r"search server is not reachable at http://127\.0\.0\.1"):
        ingest.search("drones")


STOP_PAGES = ["izhevsk-attaque-drones.html", "lemonde-binet-macron.html", "lefigaro-ukraine-frappes.html",
              "globalnews-kyiv-missile.html", "euronews-en-venezuela-oil.html", "guardian-valencia-fire.html"]


def _stop_site(settings: Settings, fixture_server: FixtureServer, tmp_path: Path) -> dict[str, str]:
    """A feed of the 6 STOP_PAGES on the loopback site, polled into the stream; the environment of the workers
    (the host's turn every 2 s, so a batch takes a while; reclaim time 600 s, so only a hand-back or a lease
    makes entries available sooner)."""
    base = fixture_server.base_url
    links = "".join(f"<item><title>p{i}</title><link>{base}/pages/{page}</link></item>"
                    for i, page in enumerate(STOP_PAGES))
    (fixture_server.root / "feeds" / "stop.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{links}</channel></rss>')
    registry = tmp_path / "feeds.yaml"
    registry.write_text(yaml.safe_dump({"feeds": [{"id": "stop", "url": f"{base}/feeds/stop.xml", "name": "S"}]}))
    env = {**settings_env(settings, tmp_path), "INGEST_FEEDS__PATH": str(registry),
           "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS": "2", "INGEST_PIPELINE__RECLAIM_IDLE_SECONDS": "600"}
    assert "queued=6" in run(["poll"], env=env).stdout
    return env


def _worker_fetching(env: dict[str, str], fixture_server: FixtureServer) -> subprocess.Popen[str]:
    """`ingest process` started, once it has asked the site for a page."""
    seen = len(fixture_server.hits)
    worker = subprocess.Popen([*INGEST, "process"], env={**_clean_env(), **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(h.startswith("/pages/") for h in fixture_server.hits[seen:]):
        assert worker.poll() is None and time.monotonic() < deadline, "the worker never fetched a page"
        time.sleep(0.05)
    return worker


def _every_page_indexed_once(settings: Settings) -> None:
    client = connect_redis(settings.redis)
    queue = RedisPendingQueue.for_settings(client, settings)
    assert queue.pending_count() == 0 and queue.dead_letters() == []
    es = build_es_client(settings.elasticsearch)
    es.indices.refresh(index=settings.elasticsearch.index_prefix)
    assert int(es.count(index=settings.elasticsearch.index_prefix)["count"]) == len(STOP_PAGES)


def test_sigterm_mid_batch_hands_the_batch_back_and_a_new_worker_indexes_the_rest(
    settings: Settings, fixture_server: FixtureServer, tmp_path: Path
) -> None:
    """SIGTERM while `ingest process` waits on a host: it exits within the grace time (30 s) with one line and
    exit 143, what it had not started is handed back at once (not after the reclaim time), and the next worker
    indexes every article once, with no dead letter."""
    env = _stop_site(settings, fixture_server, tmp_path)
    worker = _worker_fetching(env, fixture_server)
    worker.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _out, err = worker.communicate(timeout=60)
    assert time.monotonic() - signalled < 30
    assert worker.returncode == 143, err
    [line] = [line for line in err.splitlines() if "stopped by SIGTERM" in line]
    handed_back = int(line.split("stopped by SIGTERM: ", 1)[1].split()[0])
    assert 1 <= handed_back <= 5

    again = run(["process"], env=env)
    assert again.returncode == 0, again.stderr
    _every_page_indexed_once(settings)


def test_sigkill_mid_batch_then_a_new_worker_indexes_every_article_once(
    settings: Settings, fixture_server: FixtureServer, tmp_path: Path
) -> None:
    """A worker killed outright (SIGKILL: no handler runs) leaves its stream entries, a URL claim (600 s) and
    the host's turn. Once its lease (2 s here) is gone, the next worker takes all of it over: every article is
    indexed exactly once, none is dead-lettered, nothing waits for the 600 s reclaim time."""
    env = {**_stop_site(settings, fixture_server, tmp_path), "INGEST_PIPELINE__LEASE_SECONDS": "2",
           "INGEST_HTTP__TOTAL_TIMEOUT": "3"}  # the host's turn is held total + connect timeout (5 s) at most
    worker = _worker_fetching(env, fixture_server)
    worker.kill()
    worker.communicate(timeout=30)
    time.sleep(2.5)  # its lease lapses
    again = run(["process"], env=env)
    assert again.returncode == 0, again.stderr
    assert "indexed=" in again.stdout
    _every_page_indexed_once(settings)
