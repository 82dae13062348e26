"""Real services for the team tests and the benchmark: a PostgreSQL server and an MLflow tracking server,
on loopback only, started here and stopped by PID at the end, every wait bounded.

The MLflow server runs the command of the generated compose.yaml (its entry point, arguments and
environment), with the container's names swapped for loopback ones: the compose file cannot run
here (no registry for postgres:18), so the test starts what it would start.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

# The credentials the tests put in for compose.yaml's ${POSTGRES_USER} and ${POSTGRES_PASSWORD}.
USER, PASSWORD = "postgres", "team-secret"


def free_port() -> int:
    """A TCP port nothing listens on, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, psql), or None when not installed
    (`.ci/run` installs Debian's `postgresql`)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


@dataclass(frozen=True)
class Postgres:
    port: int
    data: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def psql(self) -> list[str]:
        """psql, connected as the superuser."""
        bindir = postgres_bin()
        assert bindir is not None
        return [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-q"]

    def create(self, database: str) -> None:
        """A new, empty database."""
        subprocess.run([*self.psql(), "-c", f"CREATE DATABASE {database}"], check=True, timeout=60)


def _as_postgres() -> dict[str, str]:
    """`initdb` refuses root: run the server as the `postgres` user when the tests run as root."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@contextlib.contextmanager
def postgres(databases: Mapping[str, Path | None]) -> Iterator[Postgres]:
    """A PostgreSQL server on a free loopback port, with each database created (and the SQL file
    given for it run, as the image runs /docker-entrypoint-initdb.d/); stopped at the end."""
    bindir = postgres_bin()
    assert bindir is not None, "PostgreSQL is not installed: apt-get install postgresql"
    root = Path(tempfile.mkdtemp(prefix="team-postgres-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", free_port()
    user = _as_postgres()
    subprocess.run(
        [bindir / "initdb", "--auth=trust", f"--username={USER}", f"--pgdata={data}"],
        check=True,
        capture_output=True,
        timeout=120,
        **user,  # type: ignore[call-overload]
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    pg_ctl = [str(bindir / "pg_ctl"), f"--pgdata={data}"]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
        timeout=90,
        **user,  # type: ignore[call-overload]
    )
    try:
        server = Postgres(port, data)
        for database, script in databases.items():
            server.create(database)
            if script is not None:
                subprocess.run([*server.psql(), "-f", str(script)], check=True, timeout=60)
        yield server
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
            **user,  # type: ignore[call-overload]
        )
        shutil.rmtree(root, ignore_errors=True)


def compose_mlflow_command(
    project: Path, server: Postgres, artifacts: Path, port: int
) -> tuple[list[str], dict[str, str]]:
    """The command and environment compose.yaml gives the `mlflow` service (after the Dockerfile's
    entry point), with the container's names swapped for this machine's loopback ones."""
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["mlflow"]
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["mlflow", "server"]' in dockerfile
    # The container listens on every interface of its own network; here, loopback only.
    everywhere = "0.0.0.0"  # noqa: S104  # the container's interfaces; here, loopback only
    swaps = {"/mlartifacts": str(artifacts), everywhere: "127.0.0.1", "5000": str(port)}
    assert set(swaps) <= set(service["command"]), service["command"]
    command = ["mlflow", "server", *(swaps.get(part, part) for part in service["command"])]
    values = {"POSTGRES_USER": USER, "POSTGRES_PASSWORD": PASSWORD, "MLFLOW_ALLOWED_HOSTS": ""}
    environment = {}
    for name, value in service["environment"].items():
        for variable, replacement in values.items():
            value = value.replace(f"${{{variable}:-}}", replacement)
            value = value.replace(f"${{{variable}}}", replacement)
        environment[name] = value.replace("@postgres:5432/", f"@127.0.0.1:{server.port}/")
    assert "$" not in "".join(environment.values()), environment
    return command, environment


@contextlib.contextmanager
def mlflow_server(project: Path, server: Postgres, env: Mapping[str, str]) -> Iterator[str]:
    """compose.yaml's MLflow server, run from the project's environment on a free loopback port,
    healthy within two minutes; its URL. Stopped (its whole process group) at the end."""
    port = free_port()
    artifacts = Path(tempfile.mkdtemp(prefix="team-artifacts-"))
    command, environment = compose_mlflow_command(project, server, artifacts, port)
    log = (artifacts.parent / f"{artifacts.name}.log").open("w", encoding="utf-8")
    process = subprocess.Popen(  # the compose file's own command
        ["uv", "run", "--frozen", *command],
        cwd=project,
        env={**env, **environment},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"mlflow server exited: see {log.name}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"mlflow server not healthy in 120 s: {log.name}"
            time.sleep(0.5)
        yield url
    finally:
        stop(process)
        log.close()
        shutil.rmtree(artifacts, ignore_errors=True)


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a process started in its own session, and its children: TERM, then KILL after 20 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
