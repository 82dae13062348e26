"""Issue 12's "done when", with the real components: a default project sweeps on its own (SQLite), then
a real PostgreSQL on 127.0.0.1 and compose.yaml's MLflow server on a free loopback port serve a team:
two checkouts log to one server and each sees the other's runs and downloads its model; a sweep with
two workers shares one Optuna study in PostgreSQL; killing a worker mid-study leaves it usable.
Every process started here is stopped by PID, every wait bounded (see services.py).
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import optuna
import pytest
import yaml
from sqlalchemy.pool import NullPool

from .helpers import (
    base_images,
    cannot_run,
    container_engine,
    git_init,
    image_available,
    project_env,
    render,
    run,
)
from .services import (
    ENV_FILE,
    Postgres,
    member,
    mlflow_server,
    postgres,
    postgres_bin,
    request,
    stop,
)

pytestmark = pytest.mark.slow

CLI = ["uv", "run", "--frozen", "my-ml-project"]


def champion_file(project: Path) -> Path:
    """The record of the demo experiment's champion."""
    return project / "models" / "champions" / "my-ml-project-wine.json"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default project, set up and committed, with the demo table written."""
    project = render(tmp_path_factory.mktemp("team") / "alpha")
    env = project_env()
    git_init(project, env)
    run(["uv", "sync", "--quiet"], project, env)
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "--quiet", "-m", "Start from the template"], project, env)
    run([*CLI, "data"], project, env)
    return project


@pytest.fixture(scope="module")
def database(project: Path) -> Iterator[Postgres]:
    """PostgreSQL as compose.yaml's service sets it up: the project's init script creates a role and a
    database for MLflow and for Optuna."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    with postgres(project / "docker" / "postgres-init.sh") as server:
        yield server


@pytest.fixture(scope="module")
def team(project: Path, database: Postgres) -> Iterator[dict[str, str]]:
    """The environment of a team member: the tracking server with the member's credentials, and the
    shared Optuna storage as the sweeps' role."""
    with mlflow_server(project, database, project_env()) as member:
        yield project_env() | member | {"OPTUNA_STORAGE": database.url("optuna")}


def storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage as this test reads it: connections closed after each use (an unclosed one
    is a ResourceWarning, an error under this suite's settings)."""
    return optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})


def listed(project: Path, env: dict[str, str], expression: str) -> list[dict[str, Any]]:
    found = run([*CLI, "runs", "--filter", expression, "--format", "json"], project, env)
    return list(json.loads(found.stdout))


def test_a_local_sweep_with_two_workers_records_and_promotes_every_trial(project: Path) -> None:
    env = project_env()
    swept = run([*CLI, "sweep", "--trials", "12", "--workers", "2", "--promote"], project, env)

    local = storage(f"sqlite:///{project / 'models' / 'sweeps.db'}")
    study = optuna.load_study(study_name="my-ml-project-wine", storage=local)
    assert sorted(trial.number for trial in study.trials) == list(range(12))
    assert "12 complete" in swept.stdout
    runs = listed(project, env, 'tags.sweep = "my-ml-project-wine"')
    assert {run["run_id"] for run in runs} == {t.user_attrs["run_id"] for t in study.trials}
    promoted = json.loads(champion_file(project).read_text(encoding="utf-8"))
    assert promoted["run_id"] == study.best_trial.user_attrs["run_id"]


def test_two_checkouts_share_the_tracking_server(
    project: Path, team: dict[str, str], tmp_path: Path
) -> None:
    # Given a second checkout in another directory, both logging to the server
    other = tmp_path / "beta"
    run(["git", "clone", "--quiet", str(project), str(other)], tmp_path, team)
    run(["uv", "sync", "--quiet"], other, team)
    run([*CLI, "data"], other, team)

    # when each trains, the second with another seed
    trained = run([*CLI, "train", "--name", "from-alpha"], project, team)
    assert trained.stdout == ""  # MLflow's run links stay off standard output, the commands' data
    run([*CLI, "train", "--name", "from-beta", "--set", "seed=7"], other, team)

    # then one filter in the first checkout sees the second's run, and the first's
    (beta,) = listed(project, team, "params.seed = 7")
    assert beta["run_name"] == "from-beta"
    names = {run["run_name"] for run in listed(other, team, 'tags.task = "classification"')}
    assert {"from-alpha", "from-beta"} <= names

    # its artifacts live on the server (no client path in the experiment), and the first checkout
    # downloads and promotes the second's model
    code = (
        "import mlflow; e = mlflow.get_experiment_by_name('my-ml-project-wine');"
        "print(e.artifact_location)"
    )
    location = run(["uv", "run", "--frozen", "python", "-c", code], project, team).stdout.strip()
    assert location.startswith("mlflow-artifacts:"), location
    run([*CLI, "promote", str(beta["run_id"])[:8]], project, team)
    assert (
        json.loads(champion_file(project).read_text(encoding="utf-8"))["run_id"] == beta["run_id"]
    )
    downloaded = project / "models" / "runs" / str(beta["run_id"])
    for name in ("model.joblib", "baseline.joblib", "held_out.npy", "metadata.json"):
        assert (downloaded / name).read_bytes() == (
            other / "models" / "runs" / str(beta["run_id"]) / name
        ).read_bytes()
    run([*CLI, "evaluate"], project, team)  # on the downloaded run's own held-out rows


def test_a_checkout_s_first_train_leaves_the_team_s_champion(
    project: Path, team: dict[str, str], tmp_path: Path
) -> None:
    # Given a champion the team chose on the server
    run([*CLI, "train", "--name", "team-pick", "--set", "seed=21"], project, team)
    (picked,) = listed(project, team, "params.seed = 21")
    run([*CLI, "promote", str(picked["run_id"])[:8]], project, team)

    # when a new checkout trains its first run
    other = tmp_path / "gamma"
    run(["git", "clone", "--quiet", str(project), str(other)], tmp_path, team)
    run(["uv", "sync", "--quiet"], other, team)
    run([*CLI, "data"], other, team)
    trained = run([*CLI, "train", "--set", "seed=22"], other, team)

    # then the team's champion stays, and the checkout is told how to take it or replace it
    assert "the team's champion of my-ml-project-wine is run" in trained.stderr
    assert f"promote {str(picked['run_id'])[:8]}" in trained.stderr
    url = team["MLFLOW_TRACKING_URI"]
    query = "name=my-ml-project-wine&alias=champion"
    alias = request(url, f"/api/2.0/mlflow/registered-models/alias?{query}", member())
    assert alias["model_version"]["run_id"] == picked["run_id"]
    assert not champion_file(other).exists()

    # A wrong password is one line that says what to set.
    wrong = team | {"MLFLOW_TRACKING_PASSWORD": "not-hers"}
    refused = run([*CLI, "runs"], other, wrong, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "refused the request (not signed in): set MLFLOW_TRACKING_USERNAME" in refused.stderr


def test_a_model_changed_on_the_server_is_refused_at_promote(
    project: Path, team: dict[str, str]
) -> None:
    # Given a run on the server that this checkout has no folder of (as a teammate's)
    run([*CLI, "train", "--name", "to-tamper", "--set", "seed=11"], project, team)
    (trained,) = listed(project, team, "params.seed = 11")
    run_id = str(trained["run_id"])
    folder = project / "models" / "runs" / run_id
    model, metadata = folder / "model.joblib", json.loads((folder / "metadata.json").read_text())
    other = (folder / "baseline.joblib").read_bytes()  # a model that loads, and is not the run's
    shutil.rmtree(folder)

    # then nobody can replace its files without signing in
    url = team["MLFLOW_TRACKING_URI"]
    answer = request(url, f"/api/2.0/mlflow/runs/get?run_id={run_id}", member())
    location = answer["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:")
    path = f"/api/2.0/mlflow-artifacts/artifacts{location}/run/model.joblib"
    with pytest.raises(urllib.error.HTTPError) as refused_unsigned:
        request(url, path, None, content=other)
    assert refused_unsigned.value.code == 401

    # when a member replaces its model through the artifact API, and the checksum the folder's
    # metadata records for it, as an attacker with a member's password would
    metadata["sha256"][model.name] = hashlib.sha256(other).hexdigest()
    for name, content in (
        ("model.joblib", other),
        ("metadata.json", json.dumps(metadata).encode()),
    ):
        request(url, path.replace("model.joblib", name), member(), content=content)

    # then promoting it is refused, in one line, and nothing of it is kept
    refused = run([*CLI, "promote", run_id[:8]], project, team, check=False)
    assert refused.returncode == 2, refused.stderr
    assert f"run {run_id[:8]}: its model.joblib on http://127.0.0.1:" in refused.stderr
    assert "is not the file it logged" in refused.stderr
    assert not folder.exists()
    leftovers = [path.name for path in folder.parent.iterdir() if path.name.startswith("tmp")]
    assert leftovers == []  # the download's temporary folder is gone too


def test_a_server_killed_mid_train_fails_it_fast_and_clean(
    project: Path, team: dict[str, str], database: Postgres
) -> None:
    # Given a train logging to a second MLflow server on the team's database
    with mlflow_server(project, database, project_env()) as doomed:
        env = team | doomed
        train = _started([*CLI, "train", "--name", "doomed"], project, env)
        # when the server is killed once the run is on it (its process group, as the block ends)
        deadline = time.monotonic() + 240
        while not (running := _runs_named(env, "doomed")):
            if train.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    killed = time.monotonic()
    try:
        assert running, "the run did not start on the server"
        out, err = train.communicate(timeout=120)
    finally:
        stop(train)
    took = time.monotonic() - killed

    # then the train fails within 30 s in one line, exit 2, leaving no folder behind
    assert train.returncode == 2, (out, err)
    assert took < 30, (took, err)
    assert "error: tracking server http://127.0.0.1:" in err
    assert "Traceback" not in err
    for folder in (project / "models" / "runs", project / "reports" / "runs"):
        assert [path.name for path in folder.iterdir() if path.name.endswith(".partial")] == []
    (run_id,) = running
    assert not (project / "models" / "runs" / run_id).exists()

    # and the next command that reaches the team's server marks the run FAILED, and says so
    listed_now = run([*CLI, "runs", "--format", "json"], project, team)
    assert f"Run {run_id[:8]}, left RUNNING by a failure, is marked FAILED" in listed_now.stderr
    answer = request(
        team["MLFLOW_TRACKING_URI"], f"/api/2.0/mlflow/runs/get?run_id={run_id}", member()
    )
    assert answer["run"]["info"]["status"] == "FAILED"


def _runs_named(env: dict[str, str], name: str) -> list[str]:
    """The ids of the runs named `name` on the server, in any state."""
    url, experiment = env["MLFLOW_TRACKING_URI"], "my-ml-project-wine"
    try:
        named = request(
            url, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}", member()
        )
        body = {
            "experiment_ids": [named["experiment"]["experiment_id"]],
            "filter": f"attributes.run_name = '{name}'",
        }
        found = request(url, "/api/2.0/mlflow/runs/search", member(), body=body)
    except urllib.error.URLError:
        return []
    return [str(run["info"]["run_id"]) for run in (found or {}).get("runs", [])]


def test_a_sweep_shares_one_study_in_postgresql(project: Path, team: dict[str, str]) -> None:
    swept = run(
        [*CLI, "sweep", "--trials", "12", "--workers", "2", "--study", "team"], project, team
    )

    study = optuna.load_study(study_name="team", storage=storage(team["OPTUNA_STORAGE"]))
    numbers = [trial.number for trial in study.trials]
    assert sorted(numbers) == list(range(12))  # exactly 12, no number twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert "'team' in postgresql+psycopg://optuna_worker:***@127.0.0.1" in swept.stdout
    assert ENV_FILE["OPTUNA_DB_PASSWORD"] not in swept.stdout + swept.stderr

    # Every trial is a run on the server, nested under the sweep's own run.
    runs = listed(project, team, 'tags.sweep = "team"')
    assert sorted(int(str(run["tags"]["trial"])) for run in runs) == list(range(12))
    code = (
        "import mlflow; runs = mlflow.search_runs(experiment_names=['my-ml-project-wine'],"
        " filter_string=\"tags.role = 'sweep' and tags.sweep = 'team'\", output_format='list');"
        "children = mlflow.search_runs(experiment_names=['my-ml-project-wine'],"
        " filter_string=f\"tags.mlflow.parentRunId = '{runs[0].info.run_id}'\","
        " output_format='list'); print(len(runs), len(children))"
    )
    counts = run(["uv", "run", "--frozen", "python", "-c", code], project, team).stdout.split()
    assert counts == ["1", "12"]


def test_killing_a_worker_leaves_the_study_usable(project: Path, team: dict[str, str]) -> None:
    # Given a sweep of two workers of 6 trials each
    sweep = _started(
        [*CLI, "sweep", "--trials", "12", "--workers", "2", "--study", "killed"], project, team
    )
    try:
        # when one worker is killed in the middle of a trial, once the study has a finished one
        shared = storage(team["OPTUNA_STORAGE"])
        deadline = time.monotonic() + 240
        while not _complete(shared, "killed"):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "no trial finished in 240 s"
            time.sleep(0.5)
        victim = _workers(sweep.pid)[0]
        # once a trial runs on it (a trial names its worker from the moment Optuna creates it)
        while not _running_on(shared, "killed", f"{socket.gethostname()}:{victim}"):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "the worker ran no trial in 240 s"
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        out, err = sweep.communicate(timeout=300)
    finally:
        stop(sweep)

    # then the other worker finished its share, the command says what happened, exit 2
    assert sweep.returncode == 2, (out, err)
    assert "1 worker(s) stopped before their trials were done" in err
    study = optuna.load_study(study_name="killed", storage=shared)
    states = [trial.state for trial in study.trials]
    numbers = [trial.number for trial in study.trials]
    assert len(numbers) == len(set(numbers))
    assert optuna.trial.TrialState.RUNNING not in states  # the killed one's trial is marked failed
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 6
    # and the study takes more trials, from any worker
    before = states.count(optuna.trial.TrialState.COMPLETE)
    run([*CLI, "sweep", "--trials", "1", "--study", "killed"], project, team)
    study = optuna.load_study(study_name="killed", storage=shared)
    after = [trial.state for trial in study.trials].count(optuna.trial.TrialState.COMPLETE)
    assert after == before + 1


def test_sweeps_started_together_on_a_new_database_share_one_study(
    project: Path, team: dict[str, str], database: Postgres
) -> None:
    # Given a database no sweep has used (Optuna's tables are not there yet)
    database.create("optuna_race")
    env = team | {"OPTUNA_STORAGE": database.url("optuna_race")}

    # when two sweeps start at the same moment, as a cluster job's pods do
    command = [*CLI, "sweep", "--trials", "2", "--study", "race"]
    sweeps = [_started(command, project, env) for _ in range(2)]
    try:
        done = [sweep.communicate(timeout=300) for sweep in sweeps]
    finally:
        for sweep in sweeps:
            stop(sweep)

    # then both succeed, on one study of four trials
    assert [sweep.returncode for sweep in sweeps] == [0, 0], done
    study = optuna.load_study(study_name="race", storage=storage(env["OPTUNA_STORAGE"]))
    assert sorted(trial.number for trial in study.trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_worker_killed_before_its_first_heartbeat_has_its_trial_reclaimed(
    project: Path, team: dict[str, str]
) -> None:
    # Given a worker killed right after Optuna created its trial, before Optuna's heartbeat began
    dies = (
        "import os, signal; from my_ml_project.sweep import _open, require_optuna;"
        f"study = _open(require_optuna(), {team['OPTUNA_STORAGE']!r}, 'orphan',"
        " direction='maximize', heartbeat=1); study.ask(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    died = subprocess.run(
        ["uv", "run", "--frozen", "python", "-c", dies],
        cwd=project,
        env=team,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert died.returncode != 0, died.stderr
    shared = storage(team["OPTUNA_STORAGE"])
    (orphan,) = optuna.load_study(study_name="orphan", storage=shared).trials
    assert orphan.state == optuna.trial.TrialState.RUNNING

    # when the next sweep of the study starts after two missed heartbeats
    time.sleep(2.5)
    swept = run(
        [*CLI, "sweep", "--trials", "1", "--study", "orphan", "--set", "sweep.heartbeat=1"],
        project,
        team,
    )

    # then the orphan is marked failed, and the sweep's trial ran
    assert "1 trial(s) of a worker that stopped are marked failed" in swept.stderr
    states = [t.state for t in optuna.load_study(study_name="orphan", storage=shared).trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


def _complete(shared: optuna.storages.RDBStorage, name: str) -> bool:
    try:
        study = optuna.load_study(study_name=name, storage=shared)
    except KeyError:  # not created yet
        return False
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return len(complete) >= 1


def _running_on(shared: optuna.storages.RDBStorage, name: str, worker: str) -> bool:
    study = optuna.load_study(study_name=name, storage=shared)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return any(trial.user_attrs.get("worker") == worker for trial in running)


def _workers(parent: int) -> list[int]:
    """The sweep's worker processes: the `uv run` child's children that multiprocessing spawned
    (not its resource tracker)."""
    found = []
    for pid in _descendants(parent):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"multiprocessing" in command and b"resource_tracker" not in command:
            found.append(pid)
    assert len(found) == 2, found
    return found


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text(encoding="ascii").split()
        children += [int(child) for child in text]
    return children + [grand for child in children for grand in _descendants(child)]


# The keys of the secret the Job's pods read their settings from (k8s/sweep-job.yaml says so).
SECRET_KEYS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "OPTUNA_STORAGE",
)


def test_the_cluster_job_is_valid_and_its_pods_sweep_as_written(
    project: Path, team: dict[str, str], tmp_path: Path
) -> None:
    # Given the Kubernetes Job of the project, valid against Kubernetes' schema (strict: no field
    # Kubernetes does not know)
    text = (project / "k8s" / "sweep-job.yaml").read_text(encoding="utf-8")
    job = yaml.safe_load(text)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    for key in SECRET_KEYS:
        assert f"--from-literal={key}=" in text  # the secret's keys, as its comment creates them
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/app/configs"]["readOnly"]
    assert mounts["/app/data"]["readOnly"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    secret = {key: team[key] for key in SECRET_KEYS}

    # when two of its pods run at once: the trainer image with the pod's settings (a read-only root,
    # its user, configs and data read-only, writable models, reports and /tmp) on this machine's
    # network, where the team's services listen; or, without a container engine, the pods' command
    user = int(pod["securityContext"]["runAsUser"])
    tag = _trainer_image(project, team)
    try:
        pods = [
            _pod(project, tag, container, user, secret, team, tmp_path / f"pod-{index}")
            for index in (0, 1)
        ]
        try:
            done = [pod.communicate(timeout=600) for pod in pods]
        finally:
            for started in pods:
                stop(started)
    finally:
        engine = container_engine()
        if tag is not None and engine is not None:
            subprocess.run([engine, "rmi", "--force", tag], capture_output=True, check=False)

    # then both finish, and the study holds both pods' trials, each a run on the server
    assert [pod.returncode for pod in pods] == [0, 0], done
    study_name = container["args"][container["args"].index("--study") + 1]
    trials = int(container["args"][container["args"].index("--trials") + 1])
    study = optuna.load_study(study_name=study_name, storage=storage(team["OPTUNA_STORAGE"]))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(trial.number for trial in complete) == list(range(2 * trials))
    runs = listed(project, team, f'tags.sweep = "{study_name}"')
    assert {run["run_id"] for run in runs} == {trial.user_attrs["run_id"] for trial in complete}


def _pod(
    project: Path,
    tag: str | None,
    container: dict[str, Any],
    user: int,
    secret: dict[str, str],
    env: dict[str, str],
    scratch: Path,
) -> subprocess.Popen[str]:
    """One pod of the Job: its container in the trainer image `tag` (its emptyDir volumes folders
    in `scratch`), or without an image its command in the checkout."""
    if tag is None:
        command = [*CLI, *container["args"]]
        return _started(command, project, env | secret)
    engine = container_engine()
    assert engine is not None
    volumes = []
    for name in ("models", "reports", "tmp"):  # the pod's emptyDir volumes
        (scratch / name).mkdir(parents=True)
        (scratch / name).chmod(0o777)
        volumes += ["-v", f"{scratch / name}:/{'tmp' if name == 'tmp' else f'app/{name}'}"]
    command = [
        *(engine, "run", "--rm", "--network", "host", "--read-only", "--user", f"{user}:{user}"),
        *volumes,
        *("-v", f"{project / 'configs'}:/app/configs:ro", "-v", f"{project / 'data'}:/app/data:ro"),
        *(arg for key, value in secret.items() for arg in ("-e", f"{key}={value}")),
        tag,
        *container["args"],
    ]
    return _started(command, project, env)


def _trainer_image(project: Path, env: dict[str, str]) -> str | None:
    """The Dockerfile's `trainer` stage built, its tag; None where no engine can build it."""
    engine = container_engine()
    if engine is None:
        return None
    bases = base_images(project / "Dockerfile")
    if not all(image_available(engine, base) for base in bases):
        return None
    if cannot_run(engine, next(base for base in bases if "python" in base)) is not None:
        return None
    tag = f"copier-ml-template-trainer-{os.getpid()}:latest"
    run([engine, "build", "--target", "trainer", "--tag", tag, "."], project, env)
    return tag


def _started(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A command started in a session of its own (so that `stop` ends it and its children), its
    output captured as text."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
