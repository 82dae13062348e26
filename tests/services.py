"""Real services for the team tests and the benchmark: a PostgreSQL server and an MLflow tracking server,
on loopback only, started here and stopped by PID at the end, every wait bounded.

PostgreSQL checks passwords (scram-sha-256) and is set up by the generated docker/postgres-init.sh,
as the postgres image runs it. The MLflow server runs the command of the generated compose.yaml (its
entry point, arguments, environment and mounted files), with the container's names swapped for
loopback ones: the compose file cannot run here (no registry for postgres:18), so the test starts
what it would start, waits for compose's own health check, and signs a member up as the admin would.
"""

import base64
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# What the tests put in .env for compose.yaml's ${...}: the superuser, each client's role, the admin.
USER, PASSWORD = "postgres", "team-secret"
ENV_FILE = {
    "POSTGRES_USER": USER,
    "POSTGRES_PASSWORD": PASSWORD,
    "MLFLOW_DB_PASSWORD": "mlflow-secret",
    "OPTUNA_DB_PASSWORD": "optuna-secret",
    "MLFLOW_ADMIN_USER": "admin",
    "MLFLOW_ADMIN_PASSWORD": "admin-secret",
    "MLFLOW_SECRET_KEY": "a-static-key-for-the-tests",
    "MLFLOW_ALLOWED_HOSTS": "",
}
# The member the admin signs up, whose credentials the team's commands use.
MEMBER = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "alice-secret"}


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

    def url(self, database: str = "optuna", role: str = "optuna_worker") -> str:
        """The URL of a database as a role of docker/postgres-init.sh (by default a member's
        OPTUNA_STORAGE), or as the superuser (role `postgres`)."""
        password = (
            PASSWORD if role == USER else ENV_FILE[f"{role.split('_')[0].upper()}_DB_PASSWORD"]
        )
        return f"postgresql+psycopg://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def psql(self, *args: str, env: dict[str, str] | None = None) -> None:
        """psql's `args`, connected as the superuser."""
        bindir = postgres_bin()
        assert bindir is not None
        login = ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-q", "-v", "ON_ERROR_STOP=1"]
        subprocess.run(
            [str(bindir / "psql"), *login, *args],
            check=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": PASSWORD, **(env or {})},
        )

    def create(self, database: str, owner: str = "optuna_worker") -> None:
        """A new, empty database, owned by `owner`."""
        self.psql("-c", f"CREATE DATABASE {database} OWNER {owner}")


def _as_postgres() -> dict[str, str]:
    """`initdb` refuses root: run the server as the `postgres` user when the tests run as root."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@contextlib.contextmanager
def postgres(init: Path) -> Iterator[Postgres]:
    """A PostgreSQL server on a free loopback port that checks passwords, set up by the project's
    `init` script as the image runs /docker-entrypoint-initdb.d/ (with compose's environment);
    stopped at the end."""
    bindir = postgres_bin()
    assert bindir is not None, "PostgreSQL is not installed: apt-get install postgresql"
    root = Path(tempfile.mkdtemp(prefix="team-postgres-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", free_port()
    user = _as_postgres()
    (root / "password").write_text(PASSWORD, encoding="utf-8")
    initdb = [bindir / "initdb", "--auth-host=scram-sha-256", "--auth-local=trust"]
    subprocess.run(
        [*initdb, f"--pwfile={root / 'password'}", f"--username={USER}", f"--pgdata={data}"],
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
        environment = {
            **os.environ,
            **ENV_FILE,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "PGPASSWORD": PASSWORD,
        }
        subprocess.run(["sh", str(init)], check=True, timeout=60, env=environment)
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
    project: Path, server: Postgres, folder: Path, port: int
) -> tuple[list[str], dict[str, str], list[str]]:
    """The command and environment compose.yaml gives the `mlflow` service (after the Dockerfile's
    entry point), and its health check's command, its values from ENV_FILE, with the container's names swapped for this machine's
    loopback ones and its volumes for folders in `folder`."""
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["mlflow"]
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["mlflow", "server"]' in dockerfile
    mounts = dict(volume.split(":")[1::-1] for volume in service["volumes"])  # target: source
    for target, source in mounts.items():  # a named volume: a folder here; a file: the project's
        mounts[target] = str(project / source) if source.startswith("./") else str(folder / source)
        Path(mounts[target]).parent.mkdir(parents=True, exist_ok=True)
    # The auth config names its users' database in a volume: a copy that names the folder here.
    ini = (project / "docker" / "mlflow-auth.ini").read_text(encoding="utf-8")
    assert "sqlite:////mlflow-users/" in ini
    mounts["/etc/mlflow/auth.ini"] = str(folder / "auth.ini")
    (folder / "auth.ini").write_text(
        ini.replace("/mlflow-users/", f"{mounts['/mlflow-users']}/"), encoding="utf-8"
    )
    # The container listens on every interface of its own network; here, loopback only.
    everywhere = "0.0.0.0"  # noqa: S104  # the container's interfaces; here, loopback only
    swaps = {**mounts, everywhere: "127.0.0.1", "5000": str(port)}
    assert {"/mlartifacts", everywhere, "5000"} <= set(service["command"]), service["command"]
    command = ["mlflow", "server", *(swaps.get(part, part) for part in service["command"])]
    environment = {}
    for name, value in service["environment"].items():
        value = _interpolated(str(value))
        for target, source in mounts.items():
            value = value.replace(target, source) if value == target else value
        environment[name] = value.replace("@postgres:5432/", f"@127.0.0.1:{server.port}/")
    check = service["healthcheck"]["test"]
    assert check[0] == "CMD", check
    return command, environment, [swaps.get(part, part) for part in check[1:]]


def _interpolated(value: str) -> str:
    """`value` with compose's ${NAME}, ${NAME:-default} and ${NAME:?error} read from ENV_FILE."""

    def one(found: re.Match[str]) -> str:
        name, kind, default = found.group(1), found.group(2), found.group(3)
        given = ENV_FILE.get(name, "")
        assert given or kind == ":-", f"${{{name}}}: not in the tests' .env"
        return given or default

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


@contextlib.contextmanager
def mlflow_server(
    project: Path, server: Postgres, env: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """compose.yaml's MLflow server, run from the project's environment on a free loopback port,
    ready within three minutes, with a member signed up by the admin; the member's settings
    (MLFLOW_TRACKING_URI, _USERNAME, _PASSWORD). Stopped (its whole process group) at the end."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="team-mlflow-"))
    command, environment, health = compose_mlflow_command(project, server, folder, port)
    log = (folder.parent / f"{folder.name}.log").open("w", encoding="utf-8")
    process = subprocess.Popen(  # the compose file's own command
        ["uv", "run", "--frozen", *command],
        cwd=project,
        env={**env, **environment},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    ready = {**env, **environment, "MLFLOW_READY_URL": url}
    try:
        # compose's own health check, as compose runs it until it passes: ready once a signed-in
        # search answers (the server up, its database migrated, its admin created)
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"mlflow server exited: see {log.name}"
            checked = subprocess.run(
                ["uv", "run", "--frozen", *health],
                cwd=project,
                env=ready,
                capture_output=True,
                text=True,
                check=False,
            )
            if checked.returncode == 0:
                break
            assert (
                time.monotonic() < deadline
            ), f"mlflow server not ready in 180 s ({checked.stderr.strip()}): see {log.name}"
            time.sleep(1)
        request(url, "/api/2.0/mlflow/users/create", admin(), body=_member())
        yield {"MLFLOW_TRACKING_URI": url, **MEMBER}
    finally:
        stop(process)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def admin() -> tuple[str, str]:
    """The admin's user name and password, as compose gives them to the server."""
    return ENV_FILE["MLFLOW_ADMIN_USER"], ENV_FILE["MLFLOW_ADMIN_PASSWORD"]


def member() -> tuple[str, str]:
    """The member's user name and password."""
    return MEMBER["MLFLOW_TRACKING_USERNAME"], MEMBER["MLFLOW_TRACKING_PASSWORD"]


def _member() -> dict[str, str]:
    name, password = member()
    return {"username": name, "password": password}


def request(
    url: str,
    path: str,
    user: tuple[str, str] | None,
    *,
    body: object = None,
    content: bytes | None = None,
) -> Any:
    """A request to the MLflow server's REST API as curl would send it, signed in as `user` (or not):
    a GET, a POST of the JSON `body`, or a PUT of `content`. The JSON answer; an HTTP error raises
    urllib's HTTPError (its `code` the status)."""
    headers = {}
    if user is not None:
        token = base64.b64encode(":".join(user).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data, method = None, "GET"
    if body is not None:
        data, method = json.dumps(body).encode(), "POST"
        headers["Content-Type"] = "application/json"
    elif content is not None:
        data, method = content, "PUT"
    sent = urllib.request.Request(  # noqa: S310  # a loopback server
        url + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:  # noqa: S310  # a loopback server
            text = answer.read()
    except urllib.error.HTTPError as refused:
        refused.close()  # its connection, which the caller only needs the status of
        raise
    return json.loads(text) if text else None


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
