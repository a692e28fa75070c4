"""docker-compose.yml and the Airflow Dockerfile, cross-checked with the code they deploy.

There is no Docker engine in CI, so the stack cannot be started here. These tests catch what would only show
up at deploy time: an ``INGEST_*`` variable that names no setting (pydantic-settings ignores it silently), a
value that does not parse, a URL pointing at a service or port that does not exist, a pool the DAGs do not
use, mounts of folders that are not in the repo, an image whose versions drift from the package's pins.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from ingest.config import ElasticsearchSettings, Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCALING_DOC = REPO / "docs" / "scaling.md"
PYPROJECT_FILE = REPO / "pyproject.toml"

ENV_PREFIX: str = Settings.model_config["env_prefix"] or ""
NESTED_DELIMITER: str = Settings.model_config["env_nested_delimiter"] or "__"

# The port each server listens on inside its container: the images' defaults, which the code's URLs must use.
SERVER_PORTS = {"redis": 6379, "elasticsearch": 9200, "kibana": 5601, "postgres": 5432}
# The long-running Airflow 3 components, one service each.
AIRFLOW_COMMANDS = {"api-server", "scheduler", "dag-processor", "triggerer"}
AIRFLOW_HOME = "/opt/airflow"  # the apache/airflow image's AIRFLOW_HOME, where it looks for dags/ and plugins/
AIRFLOW_IMAGE = re.compile(r"^FROM\s+apache/airflow:(?P<airflow>\d+\.\d+\.\d+)-python(?P<python>\d+\.\d+)\s*$", re.M)
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


# ---------------------------------------------------------------- reading the files


def _interpolate(value: str) -> str:
    """The value compose would use when none of the referenced variables is set (``${X:-default}``)."""

    def default(match: re.Match[str]) -> str:
        return (match.group("default") or "") if match.group("op") in (":-", "-") else ""

    return _INTERPOLATION.sub(default, value).replace("$$", "$")


@functools.cache
def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{COMPOSE_FILE}: no services"
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): _interpolate("" if v is None else str(v)) for k, v in raw.items()}


def _ingest_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in _environment(service).items() if k.upper().startswith(ENV_PREFIX.upper())}


def _ingest_services() -> list[str]:
    return sorted(name for name, svc in _services().items() if _ingest_env(svc))


def _command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def _container_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service declares inside its container (``ports`` container side, and ``expose``)."""
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        target = entry.get("target") if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    for entry in service.get("expose") or []:
        ports.add(int(str(entry).split("/")[0]))
    return ports


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """``container path -> source`` of the service's volumes, short and long syntax."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts[str(entry["target"])] = str(entry.get("source", ""))
        else:
            source, target, *_ = [*str(entry).split(":"), ""]
            mounts[target] = source
    return mounts


def _read_only_targets(service: dict[str, Any]) -> set[str]:
    targets = set()
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict) and entry.get("read_only"):
            targets.add(str(entry["target"]))
        elif isinstance(entry, str) and entry.count(":") >= 2 and "ro" in entry.rsplit(":", 1)[-1].split(","):
            targets.add(entry.split(":")[1])
    return targets


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable") and check.get("test") != ["NONE"]


def _airflow_services() -> dict[str, str]:
    """Long-running Airflow services by name, with the Airflow command each runs."""
    found = {}
    for name, svc in _services().items():
        command = _command(svc)
        if command and command[0] in AIRFLOW_COMMANDS:
            found[name] = command[0]
    return found


def _pool_command() -> tuple[str, list[str]]:
    """The service that creates the Airflow pool, and the arguments after ``airflow pools set``."""
    for name, svc in _services().items():
        words = shlex.split(" ".join(_command(svc)))
        for i in range(len(words) - 2):
            if words[i : i + 3] == ["airflow", "pools", "set"]:
                return name, words[i + 3 :]
    raise AssertionError("no service runs `airflow pools set`: the processing pool is never created")


def _service_at(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname, f"{url!r} has no host"
    return parts.hostname, parts.port or default_port


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT_FILE.read_text(encoding="utf-8"))


def _build() -> tuple[Path, Path]:
    """``(context, Dockerfile)`` of the one image the Airflow services are built from."""
    builds = {
        json.dumps(svc.get("build"), sort_keys=True) for name, svc in _services().items() if name in _airflow_services()
    }
    assert len(builds) == 1, f"the Airflow services must be built from one image, found builds {builds}"
    build = json.loads(builds.pop())
    assert isinstance(build, dict), "the Airflow services need a `build:` with a context and a dockerfile"
    context = (REPO / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


def _dockerfile_text() -> str:
    _context, dockerfile = _build()
    text = dockerfile.read_text(encoding="utf-8")
    return re.sub(r"\\\n", " ", text)


def _pins(text: str) -> dict[str, str]:
    """``name==version`` requirements written in a text (``${VAR}`` versions are not pins)."""
    return {
        name.lower().replace("-", "_"): version
        for name, version in re.findall(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9_.-]*)==(\d[^\s\"']*)", text)
    }


# ---------------------------------------------------------------- settings


def _field(variable: str) -> FieldInfo:
    """The ``Settings`` field an ``INGEST_A__B`` variable sets, walking nested sections; LookupError if none."""
    path = variable[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER.lower())
    model: type[BaseModel] | None = Settings
    field: FieldInfo | None = None
    for depth, part in enumerate(path):
        where = ".".join(path[:depth]) or "Settings"
        if model is None:
            raise LookupError(f"{variable}: {where} is a setting, not a section with {part!r}")
        if part not in model.model_fields:
            raise LookupError(f"{variable}: {where} has no field {part!r} (fields: {sorted(model.model_fields)})")
        field = model.model_fields[part]
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is not None or field is None:
        raise LookupError(f"{variable}: names the section {'.'.join(path)}, not one setting")
    return field


def _value(settings: Settings, variable: str) -> Any:
    value: Any = settings
    for part in variable[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER.lower()):
        value = getattr(value, part)
    return value


def _expected(field: FieldInfo, raw: str) -> Any:
    """What the raw string means for the field: JSON for lists and dicts (as pydantic-settings reads them)."""
    assert field.annotation is not None
    adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
    if get_origin(field.annotation) in (list, tuple, set, frozenset, dict):
        return adapter.validate_json(raw)
    return adapter.validate_strings(raw)


def _settings_of(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``Settings()`` as the service's container builds it: only the compose environment, no host leftovers."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX.upper()):
            monkeypatch.delenv(name)
    for name, value in _ingest_env(_services()[service]).items():
        monkeypatch.setenv(name, value)
    return Settings()


# ---------------------------------------------------------------- the tests


def test_pipeline_services_carry_ingest_settings() -> None:
    assert "ingest-setup" in _ingest_services()
    for name in _airflow_services():
        assert name in _ingest_services(), f"{name} runs pipeline tasks or DAG code but has no INGEST_* variables"


@pytest.mark.parametrize(
    "variable",
    sorted({v for name in _ingest_services() for v in _ingest_env(_services()[name])}),
)
def test_ingest_variable_names_a_setting(variable: str) -> None:
    assert variable == variable.upper(), f"{variable}: write settings variables in upper case"
    try:
        _field(variable)
    except LookupError as e:
        pytest.fail(f"{e}; Settings ignores unknown variables, so this one would silently do nothing")


def test_services_agree_on_ingest_settings() -> None:
    envs = {name: _ingest_env(_services()[name]) for name in _ingest_services()}
    reference_name, reference = next(iter(envs.items()))
    for name, env in envs.items():
        assert env == reference, f"{name} and {reference_name} configure the pipeline differently"


@pytest.mark.parametrize("service", _ingest_services())
def test_compose_environment_parses_into_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_of(service, monkeypatch)
    for variable, raw in _ingest_env(_services()[service]).items():
        expected = _expected(_field(variable), raw)
        assert _value(settings, variable) == expected, f"{service}: {variable}={raw!r} did not reach the setting"


@pytest.mark.parametrize("service", _ingest_services())
def test_settings_point_at_services_of_this_file(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_of(service, monkeypatch)
    targets = [("redis", settings.redis.url, SERVER_PORTS["redis"])]
    targets += [("elasticsearch", host, 80) for host in settings.elasticsearch.hosts]
    targets += [("kibana", settings.kibana.url, 80)]
    for kind, url, default_port in targets:
        host, port = _service_at(url, default_port)
        assert host in _services(), f"{service}: {url} points at {host!r}, which is not a service of the file"
        image = str(_services()[host].get("image", ""))
        assert kind in image.rsplit("/", 1)[-1], f"{service}: {url} points at {host!r}, which runs {image!r}"
        assert port == SERVER_PORTS[kind], f"{service}: {url} uses port {port}; {kind} listens on {SERVER_PORTS[kind]}"
        assert port in _container_ports(_services()[host]), f"{host} does not declare port {port} (ports/expose)"


def test_settings_server_mode_fits_a_real_elasticsearch(monkeypatch: pytest.MonkeyPatch) -> None:
    # "serverless" is only for the osmem test server; against Elasticsearch 9 it drops the compatibility header.
    assert _settings_of("airflow-scheduler", monkeypatch).elasticsearch.server_mode == "stack"


def test_task_runners_wait_for_their_servers() -> None:
    # With the LocalExecutor, tasks run inside the scheduler container.
    depends = _depends_on(_services()["airflow-scheduler"])
    for server in ("redis", "elasticsearch"):
        assert depends.get(server) == "service_healthy", f"airflow-scheduler must wait for a healthy {server}"


def test_dependencies_exist_and_health_conditions_have_healthchecks() -> None:
    for name, svc in _services().items():
        for other, condition in _depends_on(svc).items():
            assert other in _services(), f"{name} depends on {other!r}, which is not a service"
            if condition == "service_healthy":
                assert _has_healthcheck(_services()[other]), f"{name} waits for {other} to be healthy: no healthcheck"
            if condition == "service_completed_successfully":
                assert _services()[other].get("restart", "no") == "no", f"{other} is a one-shot: restart must be no"
    for server in ("postgres", "redis", "elasticsearch"):
        assert _has_healthcheck(_services()[server]), f"{server} has no healthcheck"


def test_kibana_reads_the_elasticsearch_service() -> None:
    hosts = json.loads(_environment(_services()["kibana"])["ELASTICSEARCH_HOSTS"])
    for url in hosts:
        host, port = _service_at(url, 80)
        assert host == "elasticsearch" and port in _container_ports(_services()[host]), url


def test_airflow_pool_is_the_one_the_settings_name(monkeypatch: pytest.MonkeyPatch) -> None:
    service, args = _pool_command()
    assert len(args) >= 2, f"{service}: `airflow pools set` needs a name and a number of slots, got {args}"
    settings = _settings_of(service, monkeypatch) if service in _ingest_services() else Settings()
    assert args[0] == settings.airflow.pool, f"{service} creates pool {args[0]!r}; tasks use {settings.airflow.pool!r}"
    # Whether pool_slots is read as the pool's size or as the slots one task takes, a smaller pool never runs it.
    assert int(args[1]) >= settings.airflow.pool_slots, f"pool of {args[1]} slots < pool_slots"
    assert "airflow db migrate" in " ".join(_command(_services()[service])), f"{service} must migrate the database"


def test_every_airflow_component_runs() -> None:
    assert sorted(_airflow_services().values()) == sorted(AIRFLOW_COMMANDS)


def test_airflow_services_mount_the_repo_dags_and_plugins() -> None:
    init, _ = _pool_command()
    for name in [*_airflow_services(), init]:
        mounts = _mounts(_services()[name])
        for folder in ("dags", "plugins"):
            target = f"{AIRFLOW_HOME}/{folder}"
            assert target in mounts, f"{name} does not mount {target}"
            source = (REPO / mounts[target]).resolve()
            assert source == (REPO / folder).resolve(), f"{name} mounts {mounts[target]} at {target}, not ./{folder}"
            assert source.is_dir(), f"{name} mounts {source}, which does not exist in the repo"


def test_airflow_services_share_executor_database_and_secrets() -> None:
    postgres_env = _environment(_services()["postgres"])
    api_servers = [name for name, command in _airflow_services().items() if command == "api-server"]
    assert len(api_servers) == 1
    shared: set[tuple[str, str]] | None = None
    for name in _airflow_services():
        env = _environment(_services()[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "LocalExecutor", name
        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme.startswith("postgresql"), f"{name}: metadata database must be Postgres"
        assert db.hostname in _services() and "postgres" in str(_services()[db.hostname].get("image")), name
        assert (db.port or SERVER_PORTS["postgres"]) in _container_ports(_services()[db.hostname]), name
        assert (db.username, db.password, db.path.lstrip("/")) == (
            postgres_env["POSTGRES_USER"],
            postgres_env["POSTGRES_PASSWORD"],
            postgres_env["POSTGRES_DB"],
        ), f"{name}: database credentials differ from the postgres service's"
        host, port = _service_at(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"], 80)
        assert host == api_servers[0] and port in _container_ports(_services()[host]), f"{name}: execution API"
        secrets = {(k, v) for k, v in env.items() if k in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")}
        assert len(secrets) == 2, f"{name}: set the JWT and API secrets (every component must share them)"
        assert shared is None or secrets == shared, f"{name}: secrets differ between Airflow components"
        shared = secrets


def test_feed_registry_is_mounted_where_the_setting_points(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ingest_services():
        path = str(_settings_of(name, monkeypatch).feeds.path)
        assert path in _mounts(_services()[name]), f"{name}: nothing is mounted at INGEST_FEEDS__PATH={path}"
        assert path in _read_only_targets(_services()[name]), f"{name}: mount the feed registry read-only"


def test_setup_service_runs_the_package_cli() -> None:
    setup = _services()["ingest-setup"]
    entrypoint = setup.get("entrypoint")
    words = (shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint or [])) + _command(setup)
    assert words[0] == "ingest" and "ingest" in _pyproject()["project"]["scripts"], words
    from ingest.cli import build_parser, cmd_index_setup

    try:
        args = build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"ingest-setup runs `{shlex.join(words)}`, which the ingest CLI does not accept")
    assert args.func is cmd_index_setup, f"ingest-setup runs `{shlex.join(words)}`, not the index setup"
    assert _depends_on(setup).get("elasticsearch") == "service_healthy"


def test_dockerfile_exists_and_copies_existing_files() -> None:
    context, dockerfile = _build()
    assert dockerfile.is_file(), f"docker-compose.yml builds {dockerfile}, which does not exist"
    copies = [shlex.split(line) for line in _dockerfile_text().splitlines() if line.strip().upper().startswith("COPY")]
    assert copies, "the Dockerfile copies nothing"
    copied: set[str] = set()
    for words in copies:
        args = [w for w in words[1:] if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in words), "multi-stage COPY is not expected here"
        for source in args[:-1]:
            copied.add(source.rstrip("/"))
            assert (context / source).exists(), f"{dockerfile.name} copies {source}, which is not in the repo"
    needed = {"pyproject.toml", "src"}
    assert needed <= copied, f"the image build needs {sorted(needed - copied)}"


def test_image_versions_fit_the_package_pins() -> None:
    match = AIRFLOW_IMAGE.search(_dockerfile_text())
    assert match, "the Dockerfile must build FROM apache/airflow:<version>-python<version>"
    project = _pyproject()["project"]
    assert Version(match["python"] + ".0") in SpecifierSet(project["requires-python"])
    airflow_spec = next(
        r for r in project["optional-dependencies"]["airflow"] if r.lower().startswith("apache-airflow")
    )
    assert Version(match["airflow"]) in SpecifierSet(airflow_spec[len("apache-airflow") :]), airflow_spec


def test_image_installs_the_configured_ner_models() -> None:
    pins = _pins(_dockerfile_text())
    nlp = Settings().nlp
    for model in (nlp.model_fr, nlp.model_en):
        assert model.lower().replace("-", "_") in pins, f"the image does not install the spaCy model {model}"
    wanted = _pins(" ".join(_pyproject()["project"]["optional-dependencies"]["models"]))
    assert {k: pins.get(k) for k in wanted} == wanted, "the image's model pins differ from pyproject's `models` extra"


def test_elastic_images_are_version_9_and_match_the_client() -> None:
    from importlib.metadata import version

    versions = {}
    for name in ("elasticsearch", "kibana"):
        image = str(_services()[name]["image"])
        repo, _, tag = image.rpartition(":")
        assert repo == f"docker.elastic.co/{name}/{name}", image
        versions[name] = Version(_interpolate(tag))
        assert versions[name].major == 9, f"{image}: the pipeline targets Elasticsearch 9"
    assert versions["elasticsearch"] == versions["kibana"], "Kibana must run the same version as Elasticsearch"
    # The 9.x client sends `compatible-with=9`; a server of another major rejects it.
    assert Version(version("elasticsearch")).major == versions["elasticsearch"].major


def test_published_ports_listen_on_loopback_only() -> None:
    published = [(name, str(entry)) for name, service in _services().items() for entry in service.get("ports") or []]
    assert published, "the Airflow UI is published"
    assert all(entry.startswith("127.0.0.1:") for _, entry in published), published


def test_the_celery_profile_scales_workers_on_the_stack_s_broker_and_database() -> None:
    """The scaled shape: under the "celery" profile, `airflow-worker` runs `airflow celery worker` with every other
    Airflow component's settings, can be scaled (no published port, no container name), and its broker and result
    backend are this file's Redis and Postgres; LocalExecutor stays the default."""
    services = _services()
    worker = services["airflow-worker"]
    assert worker.get("profiles") == ["celery"]
    assert _command(worker)[:2] == ["celery", "worker"]
    assert "ports" not in worker and "container_name" not in worker
    assert "celery" not in str(services["airflow-scheduler"].get("profiles", []))  # the rest runs in both shapes
    env = _environment(worker)
    assert env == _environment(services["airflow-scheduler"])  # the same settings as the scheduler's
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # ${AIRFLOW_EXECUTOR:-LocalExecutor}
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["x-airflow-common"]["environment"]
    assert raw["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.hostname in services and "redis" in str(services[broker.hostname].get("image"))
    assert broker.port in _container_ports(services[broker.hostname])
    ingest_db = urlsplit(env["INGEST_REDIS__URL"]).path
    assert broker.path != ingest_db, "the broker must not share the pipeline's Redis database"
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    database = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (backend.hostname, backend.port, backend.username, backend.password, backend.path) == (
        database.hostname, database.port, database.username, database.password, database.path)
    extras = _pyproject()["project"]["optional-dependencies"]["airflow"]
    assert any(r.startswith("apache-airflow-providers-celery") for r in extras)
    assert "[airflow]" in _dockerfile_text()  # the image installs that extra


_ES_COUNTS = re.compile(r"ES_NUMBER_OF_SHARDS=(\d+) ES_NUMBER_OF_REPLICAS=(\d+)")
_SHAPE_ROW = re.compile(r"^\| (one node|a cluster)[^|]*\| (\d+) \| (\d+) \|", re.MULTILINE)


def test_elasticsearch_shards_and_replicas_fit_the_node_count_and_match_the_docs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stack's one Elasticsearch node cannot hold a replica: the index it gets has none (green there). The
    cluster shape the file shows (ES_NUMBER_OF_SHARDS / ES_NUMBER_OF_REPLICAS) holds valid settings with a
    replica, and both shapes are the ones docs/scaling.md gives."""
    node = _environment(_services()["elasticsearch"])
    assert node.get("discovery.type") == "single-node"
    es = _settings_of("ingest-setup", monkeypatch).elasticsearch
    assert (es.number_of_shards, es.number_of_replicas) == (1, 0)
    raw = _compose()["x-ingest-env"]
    assert raw["INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS"] == "${ES_NUMBER_OF_SHARDS:-1}"
    assert raw["INGEST_ELASTICSEARCH__NUMBER_OF_REPLICAS"] == "${ES_NUMBER_OF_REPLICAS:-0}"

    examples = _ES_COUNTS.findall(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert len(examples) == 1, f"docker-compose.yml shows one cluster shape, found {examples}"
    shards, replicas = (int(n) for n in examples[0])
    cluster = ElasticsearchSettings(number_of_shards=shards, number_of_replicas=replicas)  # in range, or raises
    assert cluster.number_of_replicas >= 1, "a cluster keeps a replica of every shard"

    doc = SCALING_DOC.read_text(encoding="utf-8")
    shapes = {shape: (int(s), int(r)) for shape, s, r in _SHAPE_ROW.findall(doc)}
    assert shapes == {"one node": (1, 0), "a cluster": (shards, replicas)}, "docs/scaling.md's shapes table"
    assert f"ES_NUMBER_OF_SHARDS={shards} ES_NUMBER_OF_REPLICAS={replicas}" in doc
    assert f"INGEST_ELASTICSEARCH__NUMBER_OF_SHARDS={shards}" in doc, "the 10M-a-day shape names the same count"
