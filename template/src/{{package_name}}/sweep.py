"""Hyperparameter sweeps with Optuna: each trial is a training run, recorded like any other.

The search space is the config's `sweep.params`; every trial trains with the sampled model settings
through the same `train_run` as `train` (its folder, its record, its MLflow run nested under the
sweep's run) and is tagged with the study's name and the trial's number, so that `runs` finds it.

The study lives in Optuna's storage: a SQLite file by default, or a PostgreSQL URL that workers on
many machines share (each `sweep` on each machine adds its trials to the one study; Optuna numbers
them without duplicates). `--workers K` starts K processes here.

A worker that dies leaves its trial marked failed and the study usable (run `sweep` again to add
trials): at once by this command when it sees one of its own workers go; otherwise once the trial has
missed two heartbeats (`sweep.heartbeat` seconds apart), by the next trial to start or the next
`sweep` to start or end, on any machine. A trial has its first heartbeat and its worker's name from
the moment it is created, so that one killed in its first moments is reclaimed too.

Many workers may start at once on a new database: the first creates Optuna's tables and the study
while the others wait (a PostgreSQL advisory lock, or a file lock beside a SQLite file).
"""

import logging
import math
import multiprocessing
import os
import socket
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, SearchRange
from .data import TableSchema
from .errors import PipelineError
from .evaluate import PRIMARY_METRIC, primary_metric
from .models import ModelConfig
from .pipeline import Prepared, prepare, train_run
from .records import flatten
from .storage import exclusive, hidden_password, sqlite_file
from .tracking import TRACKER
from .train import available_cores

if TYPE_CHECKING:
    from optuna.trial import Trial

logger = logging.getLogger(__name__)

# Seconds to wait for a study database server (PostgreSQL) to accept a connection.
DATABASE_TIMEOUT = 10
# The key of the PostgreSQL advisory lock held while a study's storage and study are created.
CREATION_LOCK = 0x0F7A5EED
# Metrics where lower is better: a sweep minimises them unless `sweep.direction` says otherwise.
ERROR_METRICS = ("rmse", "mae", "mse", "log_loss")


@dataclass(frozen=True)
class Plan:
    """What one worker needs (it is sent to worker processes, so it is plain data)."""

    config: Config
    config_file: Path
    study: str
    storage: str
    metric: str
    trials: int
    parent: str | None
    worker: int
    cores: int  # its share of this machine's: the models of its trials fit on as many


@dataclass(frozen=True)
class Outcome:
    """Where the study stands after a sweep."""

    study: str
    storage: str
    metric: str
    direction: str
    counts: Mapping[str, int]
    best: dict[str, Any] | None
    failed_workers: tuple[str, ...]


def run_sweep(
    config: Config,
    config_file: Path,
    *,
    trials: int,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
) -> Outcome:
    """Add `trials` trials to the study (by default named after the experiment), `workers` at a
    time, and say where it stands."""
    optuna = require_optuna()
    if trials < 1:
        raise PipelineError(f"--trials {trials}: give a number of trials, 1 or more")
    if workers < 1:
        raise PipelineError(f"--workers {workers}: give a number of processes, 1 or more")
    name = study or config.experiment
    url = storage_url(storage or os.environ.get("OPTUNA_STORAGE") or config.sweep.storage)
    where = hidden_password(url)  # the URL as messages print it
    TRACKER.require()
    metric, direction = objective(config)  # every default metric is maximised
    heartbeat = config.sweep.heartbeat
    opened = _open(optuna, url, name, direction=direction, heartbeat=heartbeat)
    _reclaim(optuna, opened)  # a dead worker's trials, before counting the study's
    if opened.direction.name.lower() != direction:
        raise PipelineError(
            f"study {name!r} in {where} {opened.direction.name.lower()}s; this config "
            f"{direction}s {metric}: give another --study, or the same direction"
        )
    settings = fixed_settings(config)
    started = opened.user_attrs.get("settings")
    if started is None:
        opened.set_user_attr("settings", settings)
    elif started != settings:
        differ = sorted(
            key for key in {*started, *settings} if started.get(key) != settings.get(key)
        )
        raise PipelineError(
            f"study {name!r} in {where} was started with other settings than this config's "
            f"({', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''}): its trials and these "
            "could not be compared; give another --study"
        )
    # The trials record the storage they use (OPTUNA_STORAGE, --storage), not the config's.
    config = config.model_copy(update={"sweep": config.sweep.model_copy(update={"storage": url})})
    prepared = prepare(config)  # the table is checked before any worker starts
    metric, direction = objective(config, prepared.schema)
    workers = min(workers, trials)
    cores = max(1, available_cores() // workers)
    logger.info(
        "Sweep %r in %s: %d trials, %d worker%s of %d core%s, %s %s over %s",
        name,
        where,
        trials,
        workers,
        "" if workers == 1 else "s",
        cores,
        "" if cores == 1 else "s",
        direction,
        metric,
        ", ".join(config.sweep.params),
    )
    failed: list[str] = []
    with TRACKER.sweep(config, name) as parent:
        plans = [
            Plan(config, config_file, name, url, metric, share, parent, worker, cores)
            for worker, share in enumerate(_shares(trials, workers))
        ]
        if workers == 1:
            work(plans[0], prepared, opened)
        else:
            failed = _run_workers(plans, opened)
    _reclaim(optuna, opened)
    return _outcome(optuna, opened, where, metric, direction, failed)


def fixed_settings(config: Config) -> dict[str, Any]:
    """The settings every trial of a study shares (flat, as JSON): the config but the model settings
    it searches and where it keeps things (sweep, tracking, outputs)."""
    searched = set(config.sweep.params)
    every = flatten(config.model_dump(mode="json"))
    kept = ("sweep.", "tracking.", "outputs.")
    return {
        key: value
        for key, value in every.items()
        if key not in searched and not key.startswith(kept)
    }


def objective(config: Config, schema: TableSchema | None = None) -> tuple[str, str]:
    """The metric the sweep optimises (a flat name, `model.r2`) and its direction: by default the
    table's primary metric (for two classes the average precision, which stays meaningful however
    rare the positive class is; before the table is read, the task's)."""
    default = primary_metric(schema) if schema else PRIMARY_METRIC[config.data.task]
    metric = config.sweep.metric or f"model.{default}"
    if config.sweep.direction is not None:
        return metric, config.sweep.direction
    return metric, "minimize" if metric.rsplit(".", 1)[-1] in ERROR_METRICS else "maximize"


def work(plan: Plan, prepared: Prepared | None = None, study: Any = None) -> None:
    """One worker: `plan.trials` trials of the study, one after the other (the study and the
    prepared table are opened here unless the caller has them already)."""
    optuna = require_optuna()
    if study is None:
        storage = _storage(optuna, plan.storage, plan.config.sweep.heartbeat)
        study = optuna.load_study(study_name=plan.study, storage=storage)
    study.sampler = optuna.samplers.TPESampler(seed=_seed(plan, len(study.trials)))
    prepared = prepared or prepare(plan.config)
    space_items = list(plan.config.sweep.params.items())

    def trial_run(trial: "Trial") -> float:
        settings = {key: suggest(trial, key, space) for key, space in space_items}
        changed = {key.split(".", 1)[1]: value for key, value in settings.items()}
        model = ModelConfig.model_validate({**plan.config.model.model_dump(), **changed})
        config = plan.config.model_copy(update={"model": model})
        run = train_run(
            config,
            prepared,
            plan.config_file,
            name=f"{plan.study}-{trial.number}",
            tags={"sweep": plan.study, "trial": trial.number},
            parent=plan.parent,
            cores=plan.cores,
        )
        trial.set_user_attr("run_id", run.run_id)
        metrics = flatten(run.metrics)
        if plan.metric not in metrics:
            known = ", ".join(sorted(metrics))
            raise PipelineError(
                f"sweep.metric {plan.metric!r} is not a metric of the runs: {known}"
            )
        value = float(metrics[plan.metric])
        logger.info(
            "Trial %d: %s %.4f with %s (run %s)",
            trial.number,
            plan.metric,
            value,
            ", ".join(f"{key}={val}" for key, val in settings.items()),
            run.run_id[:8],
        )
        return value

    # Each stage's progress would be a dozen lines per trial: a line per trial is logged instead.
    package, before = logging.getLogger(__package__), logging.getLogger(__package__).level
    if before == logging.INFO:
        package.setLevel(logging.WARNING)
        logger.setLevel(logging.INFO)
    try:  # a trial whose settings a model rejects (scikit-learn's ValueError) fails alone
        study.optimize(trial_run, n_trials=plan.trials, catch=(ValueError,))
    finally:
        package.setLevel(before)


def suggest(trial: "Trial", key: str, space: SearchRange | list[Any]) -> Any:
    """One value of a setting's search space: an integer or float range, or one of a list."""
    if isinstance(space, list):
        return trial.suggest_categorical(key, space)
    if isinstance(space.low, int) and isinstance(space.high, int):
        return trial.suggest_int(key, space.low, space.high, log=space.log)
    return trial.suggest_float(key, float(space.low), float(space.high), log=space.log)


def require_optuna() -> Any:
    """Optuna, or one clear error (the Docker image holds what `predict` needs only)."""
    try:
        import optuna
    except ImportError:
        raise PipelineError(
            "Optuna is not installed here (the Docker image holds what `predict` needs only): "
            "sweep in the project with `make sweep`"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is logged here
    return optuna


def storage_url(url: str) -> str:
    """The storage URL, with a relative SQLite path made absolute and its folder created (every
    process of a sweep then opens the same file)."""
    path = sqlite_file(url)
    if path is None:
        return url
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def worker_name() -> str:
    """This process as the trials it runs name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _storage(optuna: Any, url: str, heartbeat: int) -> Any:
    """Optuna's database storage, with heartbeats every `heartbeat` seconds so that a dead worker's
    trial is marked failed once it has missed two; each trial it creates has its first heartbeat and
    its worker's name at once (Optuna's own start a moment later, when the trial runs, and a trial
    with no heartbeat would never be reclaimed). A SQLite file is opened for each use (no pool),
    and waited for while another process writes."""
    from sqlalchemy.pool import NullPool

    class Storage(optuna.storages.RDBStorage):  # type: ignore[misc]
        # The method both Optuna's study (through its cache) and `create_new_trial` call.
        def _create_new_trial(self, study_id: int, template_trial: Any = None) -> Any:
            created = super()._create_new_trial(study_id, template_trial)
            if template_trial is not None:  # a trial added or enqueued, not one to run here
                return created
            self.record_heartbeat(created._trial_id)
            self.set_trial_user_attr(created._trial_id, "worker", worker_name())
            return self.get_trial(created._trial_id)

    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}, "poolclass": NullPool}
    elif url.startswith("postgresql"):  # a silent server: 10 s, not the system's 2 minutes
        engine = {"connect_args": {"connect_timeout": DATABASE_TIMEOUT}, "pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are marked experimental since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return Storage(
            url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=2 * heartbeat
        )


@contextmanager
def _one_creator(url: str) -> Iterator[None]:
    """One process at a time creates the storage's tables and the study: on PostgreSQL, two at once
    collide in the catalogue (`UniqueViolation pg_type_typname_nsp_index`), as a Kubernetes Job's
    pods starting together would. An advisory lock, freed by the server if this process dies."""
    path = sqlite_file(url)
    if path is not None:
        with exclusive(path.with_name(f"{path.name}.lock"), "waiting for another sweep"):
            yield
        return
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": DATABASE_TIMEOUT}
    )
    try:
        with engine.connect() as connection:
            lock = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
            connection.execute(lock, {"key": CREATION_LOCK})
            yield  # the lock ends with the connection
    finally:
        engine.dispose()


def _open(optuna: Any, url: str, name: str, *, direction: str, heartbeat: int) -> Any:
    """The study, created when new; one clear line when the storage cannot be opened."""
    try:
        with _one_creator(url):
            return optuna.create_study(
                study_name=name,
                storage=_storage(optuna, url, heartbeat),
                direction=direction,
                load_if_exists=True,
            )
    except ModuleNotFoundError as exc:
        raise PipelineError(
            f"sweep storage {hidden_password(url)} needs the {exc.name} package: "
            f"add it with `uv add {exc.name}`"
        ) from None
    except Exception as exc:  # SQLAlchemy's and the driver's errors: the URL or the server
        first = hidden_password((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        raise PipelineError(
            f"sweep storage {hidden_password(url)} cannot be opened ({first}): check --storage, "
            "OPTUNA_STORAGE or sweep.storage in the config"
        ) from None


def _seed(plan: Plan, done: int) -> int:
    """A sampler seed per worker and per sweep of the study (`done` trials so far): reproducible,
    never two alike."""
    return (plan.config.seed * 1_000_003 + plan.worker * 7_919 + done) % 2**32


def _shares(trials: int, workers: int) -> list[int]:
    """`trials` split as evenly as it goes between `workers`: 12 over 5 is 3, 3, 2, 2, 2."""
    return [trials // workers + (1 if index < trials % workers else 0) for index in range(workers)]


def _run_workers(plans: list[Plan], study: Any) -> list[str]:
    """Run each plan in its own process; the workers that did not finish (as host:pid)."""
    # A fresh interpreter per worker: no threads or locks inherited from this process.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_main, args=(plan,)) for plan in plans]
    for process in processes:
        process.start()
    failed = []
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    for plan, process in zip(plans, processes, strict=True):
        if process.exitcode != 0:
            failed.append(f"{socket.gethostname()}:{process.pid}")
            logger.warning(
                "Worker %d stopped (%s) before its %d trials were done",
                plan.worker,
                _how(process.exitcode),
                plan.trials,
            )
    if failed:
        _fail_trials_of(study, failed)
    return failed


def _how(exitcode: int | None) -> str:
    """How a worker process ended, in words."""
    if exitcode is not None and exitcode < 0:
        return f"signal {-exitcode}"
    return f"exit {exitcode}"


def _worker_main(plan: Plan) -> None:
    """A worker process: the CLI's logging, and errors as one line (exit 2), never a traceback."""
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)-7s [worker {plan.worker}] %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger(__package__).setLevel(logging.WARNING)  # a line per trial, not per stage
    logger.setLevel(logging.INFO)
    try:
        work(plan)
    except PipelineError as exc:
        sys.stderr.write(f"worker {plan.worker}: error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _reclaim(optuna: Any, study: Any) -> None:
    """Mark failed the trials whose worker has missed two heartbeats, on any machine (Optuna does
    it only as a trial starts: a sweep that starts or ends does it too)."""
    states = optuna.trial.TrialState
    running = {t.number for t in study.get_trials(deepcopy=False, states=(states.RUNNING,))}
    if not running:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=(states.FAIL,))
    # Those running before and failed now (not those that finished meanwhile, on other machines).
    reclaimed = sorted(t.number for t in failed if t.number in running)
    if reclaimed:
        logger.warning(
            "%d trial(s) of a worker that stopped are marked failed (%s)",
            len(reclaimed),
            ", ".join(map(str, reclaimed)),
        )


def _fail_trials_of(study: Any, workers: list[str]) -> None:
    """Mark failed the trials that workers which died left running (Optuna's heartbeat would too,
    later)."""
    optuna = require_optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        if trial.user_attrs.get("worker") in workers:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            logger.warning("Trial %d of a stopped worker is marked failed", trial.number)


def _outcome(
    optuna: Any, study: Any, where: str, metric: str, direction: str, failed: list[str]
) -> Outcome:
    """The study's counts and best trial; `where`: its storage as messages print it."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in optuna.trial.TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = None
    if complete:
        chosen = study.best_trial
        value = float(chosen.value) if chosen.value is not None else math.nan
        best = {
            "trial": chosen.number,
            "value": value,
            "params": dict(chosen.params),
            "run_id": chosen.user_attrs.get("run_id"),
        }
    return Outcome(study.study_name, where, metric, direction, counts, best, tuple(failed))
