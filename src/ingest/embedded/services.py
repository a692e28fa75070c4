"""Embedded services for the demo and the tests: a real ``redis-server``, the osmem search server and the
fixture HTTP server, started as processes on loopback. Production uses real servers instead (set
``INGEST_REDIS__URL`` and ``INGEST_ELASTICSEARCH__HOSTS``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ingest.config import PACKAGE_DIR, EmbeddedSettings
from ingest.embedded.discover import Service, alive, running_services, state_file
from ingest.errors import ConfigError, ServiceUnavailableError

DEMO_ROOT = PACKAGE_DIR / "embedded" / "demo_data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(name: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise ServiceUnavailableError(name, f"127.0.0.1:{port}", f"the process exited with code {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise ServiceUnavailableError(name, f"127.0.0.1:{port}", f"did not open its port within {timeout:.0f} s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    if not found:
        raise ConfigError("redis-server is not installed; run `make setup` (it installs Debian's redis-server)")
    return found


def osmem_binary() -> str:
    try:
        from osmem_server import resolve_binary
    except ImportError as e:
        raise ConfigError("osmem-server is not installed; run `make setup`") from e
    return str(resolve_binary())


def spawn_redis(port: int, data_dir: Path, detached: bool = False) -> subprocess.Popen[bytes]:
    """A redis-server that keeps the stream on disk (append-only file, fsync every second, in ``data_dir``): one
    restarted loses nothing pending. The embedded search server keeps its index in memory only; when it starts
    empty while Redis kept its state, ``ingest.reconcile`` notices (``ingest demo`` repairs it by itself)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=detached)
    wait_for_port("redis-server", port, proc)
    return proc


def spawn_redis_cluster(ports: list[int], data_dir: Path) -> list[subprocess.Popen[bytes]]:
    """A Redis Cluster of ``len(ports)`` masters (at least 3, no replicas) on loopback, in memory, for the tests
    and benchmarks: ``redis-server --cluster-enabled yes`` on each port, then ``redis-cli --cluster create``;
    returns once every slot is served. Seed a client with any one node (``redis://127.0.0.1:<port>/0``)."""
    procs: list[subprocess.Popen[bytes]] = []
    cli = shutil.which("redis-cli", path=f"{Path(redis_server_binary()).parent}:/usr/bin:/usr/local/bin")
    if not cli:
        raise ConfigError("redis-cli is not installed; run `make setup` (Debian's redis-server brings it)")
    try:
        for port in ports:
            node = data_dir / str(port)
            node.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen(
                [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
                 # the bus port, else port + 10000: past 65535 for a high free port
                 "--cluster-enabled", "yes", "--cluster-port", str(free_port()), "--cluster-config-file", "nodes.conf",
                 "--save", "",
                 "--appendonly", "no", "--protected-mode", "yes"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for_port("redis-server", port, procs[-1])
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = subprocess.run([cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True,
                                  timeout=10, check=False).stdout
            if "cluster_state:ok" in info:
                return procs
            time.sleep(0.2)
        raise ConfigError(f"the Redis Cluster on ports {ports} did not reach cluster_state:ok within 30 s")
    except BaseException:
        for proc in procs:
            proc.terminate()
        raise


def spawn_postgres(port: int, database: str = "airflow") -> tuple[subprocess.Popen[bytes], Path]:
    """A throwaway PostgreSQL cluster (Debian's ``postgresql``) on 127.0.0.1:``port`` with ``database`` in it, for
    Airflow's metadata database in the tests and benchmarks: trust authentication for the ``postgres`` user on
    loopback, no disk syncing, data in a new folder under /tmp (returned: the caller removes it). As root, the
    server runs as the ``postgres`` user, which must be able to reach that folder."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise ConfigError("PostgreSQL is not installed; `make test` installs Debian's postgresql")
    bin_dir = versions[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data_dir = Path(tempfile.mkdtemp(prefix=f"ingest-pg-{port}-", dir="/tmp"))
    if as_postgres:
        shutil.chown(data_dir, "postgres", "postgres")
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
                             "-h", "127.0.0.1", "-k", str(data_dir), "-c", "fsync=off", "-c", "max_connections=200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("postgres", port, proc)
    deadline = time.monotonic() + 30
    while True:  # the port opens before the server accepts connections
        made = subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               database], capture_output=True, text=True, timeout=30, check=False)
        if made.returncode == 0:
            return proc, data_dir
        if time.monotonic() > deadline:
            proc.terminate()
            raise ServiceUnavailableError("PostgreSQL", f"127.0.0.1:{port}", made.stderr.strip()[-300:])
        time.sleep(0.3)


def spawn_search(port: int, detached: bool = False) -> subprocess.Popen[bytes]:
    args = [osmem_binary(), "-addr", f"127.0.0.1:{port}", "-no-stdin-watch", "-no-ja"]
    if not detached:
        args += ["-parent-pid", str(os.getpid())]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=detached)
    wait_for_port("osmem-server", port, proc)
    return proc


@contextlib.contextmanager
def search_server(url: str | None = None, mode: str = "stack") -> Iterator[tuple[str, str]]:
    """``(url, server_mode)`` of the search server to use: the one given, or an osmem spawned on a free port for
    the duration of the block (benchmarks: the same code against a real Elasticsearch by URL)."""
    if url:
        yield url, mode
        return
    port = free_port()
    proc = spawn_search(port)
    try:
        yield f"http://127.0.0.1:{port}", "serverless"
    finally:
        proc.terminate()
        proc.wait(10)


def spawn_fixture_server(port: int, root: Path, detached: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "ingest.embedded.fixture_server", "--root", str(root), "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=detached)
    wait_for_port("fixture server", port, proc)
    return proc


class EmbeddedServices:
    """The demo's long-lived services, remembered in ``<state_dir>/services.json`` until ``ingest stop``."""

    def __init__(self, settings: EmbeddedSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.expanduser().resolve()
        self.state_file = state_file(self.state_dir)

    def urls(self) -> dict[str, str]:
        s = self.settings
        return {
            "redis": f"redis://127.0.0.1:{s.redis_port}/0",
            "search": f"http://127.0.0.1:{s.search_port}",
            "feeds": f"http://127.0.0.1:{s.feeds_port}",
        }

    def running(self) -> list[Service]:
        """Services recorded as started whose process is still alive."""
        return running_services(self.state_dir)

    def start(self) -> list[Service]:
        """Start what is not running yet; reuse what is."""
        alive = {s.name: s for s in self.running()}
        urls = self.urls()
        s = self.settings
        plan = [
            ("redis", s.redis_port, lambda: spawn_redis(s.redis_port, self.state_dir / "redis", detached=True)),
            ("search", s.search_port, lambda: spawn_search(s.search_port, detached=True)),
            ("feeds", s.feeds_port, lambda: spawn_fixture_server(s.feeds_port, DEMO_ROOT, detached=True)),
        ]
        for name, port, spawn in plan:
            if name in alive:
                continue
            if port_open(port):
                raise ConfigError(
                    f"port {port} for the embedded {name} service is taken by another program; "
                    f"stop it or set INGEST_EMBEDDED__{name.upper()}_PORT"
                )
            proc: subprocess.Popen[bytes] = spawn()  # type: ignore[no-untyped-call]
            alive[name] = Service(name, proc.pid, urls[name])
        services = list(alive.values())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps([asdict(x) for x in services], indent=2))
        return services

    def stop(self) -> list[Service]:
        stopped = self.running()
        for service in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(service.pid, signal.SIGTERM)
        for service in stopped:
            deadline = time.monotonic() + 5
            while alive(service.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.state_file.unlink(missing_ok=True)
        return stopped
