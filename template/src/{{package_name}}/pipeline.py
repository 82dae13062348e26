"""The commands behind the CLI: each reads its inputs through `storage`, runs pure stages, and writes
its outputs through `storage`. No other module reads or writes files.

A run owns its evaluation: it is scored at train time on the rows it held out, which it records
(`data.Split`), and its reports go to reports/runs/<run id>/. `evaluate` scores an experiment's
champion on its own held-out rows again, never on rows it trained on; `predict` and `evaluate` use
the champion of the experiment the config names (see `registry.py`).
"""

import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .config import PROJECT, Config
from .data import (
    DEMO_FILES,
    Split,
    TableSchema,
    check_table,
    column_roles,
    demo_table,
    describe_table,
    held_out_rows,
    positive_rule,
    recorded_split,
    same_label,
    split,
    with_classes,
)
from .errors import DataValidationError, PipelineError
from .evaluate import (
    FIGURES,
    Metrics,
    beats_baseline,
    comparison_figure,
    figures,
    primary_metric,
    score_all,
)
from .experiments import select
from .models import DEFAULT_THRESHOLD, decision_threshold
from .predict import predict
from .records import Run, append_record
from .registry import (
    BASELINE,
    CONFIG,
    HELD_OUT,
    METADATA,
    MODEL,
    Champion,
    Pruned,
    find_champion,
    find_run,
    prune,
    run_metadata,
)
from .registry import promote as record_champion
from .roles import ColumnRole, summary
from .storage import (
    CHUNK_ROWS,
    copy_file,
    ensure_writable,
    fingerprint,
    git_commit,
    git_dirty,
    hidden_password,
    load_mask,
    publish_folder,
    read_table,
    read_table_chunks,
    remove_file,
    save_figure,
    save_mask,
    save_model,
    write_json,
    write_table,
    write_text,
)
from .tracking import TRACKER
from .train import fit, threshold_folds

logger = logging.getLogger(__name__)

COLUMNS = "columns.csv"  # each column's role, in a run's reports
_HINTS = 4  # columns left out as identifiers or free text, named with the way to keep them


def run_data(config: Config) -> Path:
    """Write the demo table of `data.task` (it ships with scikit-learn: no network) to data/raw/."""
    path = DEMO_FILES[config.data.task]
    frame = demo_table(config.data.task)
    write_table(frame, path)
    logger.info("Wrote the %s demo, %d rows, to %s", config.data.task, len(frame), path)
    if config.data.path != path:
        logger.info("data.path is %s: set it to %s to train on the demo", config.data.path, path)
    return path


@dataclass(frozen=True)
class Prepared:
    """The checked table, its schema and split, and the run tags they give: what every run of a config
    trains on (a sweep prepares once and trains many times)."""

    table: pd.DataFrame
    schema: TableSchema
    train: pd.DataFrame
    test: pd.DataFrame
    split: Split
    tags: Mapping[str, Any]
    roles: Sequence[ColumnRole] = ()


def prepare(config: Config) -> Prepared:
    """Read the table `data:` names, check it and split it; nothing is written."""
    data = config.data
    source = read_table(data.path, hint=_missing_table_hint(config), na_values=data.na_values)
    roles = column_roles(source, data, source=str(data.path))
    schema = describe_table(source, data, roles)
    table = check_table(source, schema, source=str(data.path))
    ensure_writable(config.outputs.runs_dir)  # before minutes of fitting, not after
    schema = with_classes(schema, table, data.positive_class)
    threshold_folds(config.decision.threshold, schema, table[schema.target])
    train, test = split(table, schema, test_size=data.test_size, seed=config.seed)
    test = test.sort_index()  # in the table's order, as `evaluate` finds them: the same sums
    held_out = recorded_split(table, test, schema, seed=config.seed, test_size=data.test_size)
    if held_out.repeats:
        logger.warning(
            "%d of the %d held-out rows repeat a training row exactly: they flatter the scores "
            "(drop duplicate rows from %s)",
            held_out.repeats,
            len(test),
            data.path,
        )
    logger.info(
        "%s: %d rows, %d features; %d to train, %d held out. Columns by role (data.columns "
        "overrides them):\n  %s",
        data.path,
        len(table),
        len(schema.features),
        len(train),
        len(test),
        "\n  ".join(summary(roles)),
    )
    for role in [role for role in roles if role.role in ("identifier", "text")][:_HINTS]:
        logger.info("Column '%s': %s", role.column, role.why)
    if schema.binary and data.positive_class is None:
        rule = positive_rule(schema.classes)
        logger.info("Positive class: %r (%s; data.positive_class)", schema.positive_class, rule)
    tags = {
        "data_fingerprint": fingerprint(data.path),
        "dirty": git_dirty(),
        "git_commit": git_commit(),
        "task": data.task,
    }
    return Prepared(table, schema, train, test, held_out, tags, roles)


def train_run(
    config: Config,
    prepared: Prepared,
    config_file: Path,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: str | None = None,
    cores: int | None = None,
) -> Run:
    """Fit the baseline and the model on the prepared split (on `cores` cores, None: all), report
    both on the held-out rows, keep the run's files in its own folders and record the run everywhere
    runs are kept."""
    outputs, schema, test = config.outputs, prepared.schema, prepared.test
    with TRACKER.start(config, config_file, name, parent) as started:
        models = fit(
            config.model,
            prepared.train,
            schema,
            seed=config.seed,
            threshold=config.decision.threshold,
            cores=cores,
        )
        metrics = score_all(models, test, schema)
        _log_comparison(metrics, schema)
        threshold = decision_threshold(models["model"]) if schema.binary else None
        if isinstance(config.decision.threshold, str) and threshold is not None:
            logger.info(
                "Decision threshold %.4g (%s, on folds of the training rows)",
                threshold,
                config.decision.threshold,
            )
        effective = recorded_settings(config)
        run = replace(
            started,
            params=effective,
            metrics=metrics,
            tags={
                "config_file": str(config_file),
                **prepared.tags,
                **({"decision_threshold": threshold} if threshold is not None else {}),
                **(tags or {}),
            },
            schema=schema.to_json(),
            split=prepared.split.to_json(),
        )
        # Written under temporary names, then renamed: a run's folders are complete or absent.
        folder = outputs.runs_dir / run.run_id
        staging = outputs.runs_dir / f".{run.run_id}.partial"
        reports = outputs.run_reports_dir / run.run_id
        reports_staging = outputs.run_reports_dir / f".{run.run_id}.partial"
        try:  # a failure (a tracking server gone, a full disk, Ctrl-C) leaves nothing behind
            _write_reports(config, run.record(), models["model"], test, metrics, reports_staging)
            write_table(
                pd.DataFrame([role.to_json() for role in prepared.roles]),
                reports_staging / COLUMNS,
            )
            sha256 = {
                BASELINE: save_model(models["baseline"], staging / BASELINE),
                MODEL: save_model(models["model"], staging / MODEL),
                HELD_OUT: save_mask(prepared.split.held_out, staging / HELD_OUT),
            }
            write_text(yaml.safe_dump(effective, sort_keys=False), staging / CONFIG)
            record = run.record() | {"sha256": sha256}
            write_json(record, staging / METADATA)
            TRACKER.log(config, run, prepared.table, reports_staging, staging)
            publish_folder(reports_staging, reports)
            publish_folder(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(reports_staging, ignore_errors=True)
            raise
        append_record(record, outputs.runs_file)
    logger.info("Run %s (%s) saved in %s, its reports in %s", run.name, run.run_id, folder, reports)
    return run


def recorded_settings(config: Config) -> dict[str, Any]:
    """The config as a run records it (its params, its folder's config.yaml, shared with the team):
    the stores it used, as the environment may set them, each URL's password hidden."""
    settings = config.model_dump(mode="json")
    tracking = settings.get("tracking", {})
    if "uri" in tracking:  # MLflow's store, which MLFLOW_TRACKING_URI overrides
        tracking["uri"] = os.environ.get("MLFLOW_TRACKING_URI") or tracking["uri"]
    for section, key in (("tracking", "uri"), ("sweep", "storage")):
        if isinstance(settings.get(section, {}).get(key), str):
            settings[section][key] = hidden_password(settings[section][key])
    return settings


def run_train(
    config: Config,
    config_file: Path = Path("configs/train.yaml"),
    *,
    name: str | None = None,
    promote: bool = False,
) -> dict[str, Metrics]:
    """One training run (`train_run` on the prepared table): the champion when asked, or when its
    experiment has none yet."""
    TRACKER.require()  # before any work: the Docker image, for one, has no tracking library
    run = train_run(config, prepare(config), config_file, name=name)
    promote_if_first(config, run.run_id, asked=promote, config_file=config_file)
    return {model: dict(values) for model, values in run.metrics.items()}


def command(config_file: Path, *arguments: str) -> str:
    """A command of this project's CLI, as it runs from the project's folder without a venv."""
    chosen = [] if config_file == Path("configs/train.yaml") else ["--config", str(config_file)]
    return " ".join(["uv", "run", PROJECT, *chosen, *arguments])


def promote_if_first(
    config: Config,
    run_id: str,
    *,
    asked: bool = False,
    config_file: Path = Path("configs/train.yaml"),
) -> bool:
    """Promote the run when asked or when the experiment has no champion; otherwise say how."""
    how = f"`{command(config_file, 'promote', run_id[:8])}` makes it the champion"
    try:
        current = find_champion(config.outputs, config.experiment)
    except PipelineError as exc:
        if not asked:
            logger.warning("Run %s is not promoted: %s; %s", run_id[:8], exc, how)
            return False
        current = None
    if not asked and current is None and (shared := TRACKER.shared_champion(config)):
        logger.warning(
            "Run %s is not promoted: the team's champion of %s is run %s on the tracking server, "
            "which only a decision replaces; `%s` makes it this checkout's too, and %s (for the "
            "team too)",
            run_id[:8],
            config.experiment,
            shared[:8],
            command(config_file, "promote", shared[:8]),
            how,
        )
        return False
    if asked or current is None:
        run_promote(config, run_id)
        return True
    problem = _mismatch(config, current)
    if problem:
        logger.warning("Run %s is not promoted: %s; %s", run_id[:8], problem, how)
    else:
        logger.info("The champion is still run %s: %s", current.run_id[:8], how)
    return False


def has_champion(config: Config) -> bool:
    """Whether the config's experiment has a champion, in this checkout or the team's on a shared
    registry (a broken record counts: it is reported when used, not replaced behind the team's
    back)."""
    try:
        here = find_champion(config.outputs, config.experiment) is not None
    except PipelineError:
        return True
    return here or TRACKER.shared_champion(config) is not None


def run_promote(config: Config, run_id: str) -> dict[str, Any]:
    """Make a run its experiment's champion, the model `predict`, `evaluate` and the image use: a
    record in models/champions/ naming it, its reports shown in reports/, and the tracking backend
    told (MLflow: a registered version with the alias `champion`). A run trained in another checkout
    is downloaded first where the backend keeps its files."""
    outputs = config.outputs
    folder = find_run(outputs, run_id) or TRACKER.fetch(config, run_id, outputs.runs_dir)
    if folder is None:
        raise PipelineError(
            f"run {run_id!r} has no folder in {outputs.runs_dir} (pruned, or trained elsewhere): "
            "`runs` lists the runs and their ids"
        )
    metadata = run_metadata(folder)
    experiment = str(metadata.get("experiment"))
    if experiment != config.experiment:
        raise PipelineError(
            f"run {folder.name[:8]} is of experiment {experiment}, not of this config's "
            f"({config.experiment}): promote it with that experiment's config (--config)"
        )
    try:
        before = find_champion(outputs, experiment)
    except PipelineError:
        before = None  # a broken record: replaced, which is what promoting is for
    record = record_champion(
        outputs, folder, lambda: TRACKER.promoted(config, folder.name, experiment, folder)
    )
    _show_reports(config, folder.name)
    replaced = (
        f" (it was run {before.run_id[:8]})" if before and before.run_id != folder.name else ""
    )
    logger.info("Run %s is the champion of %s%s", metadata.get("run_name"), experiment, replaced)
    return record


def run_runs(
    config: Config,
    *,
    expression: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> list[Mapping[str, Any]]:
    """The experiment's finished runs, filtered and sorted (newest first by default)."""
    return select(TRACKER.read_runs(config), expression=expression, sort=sort, limit=limit)


def run_compare(
    config: Config, run_ids: Sequence[str], *, plot: bool = False
) -> list[Mapping[str, Any]]:
    """The runs, in the order given; with `plot`, a figure of their metrics side by side."""
    from .experiments import find

    records = TRACKER.read_runs(config)
    chosen = [find(records, run_id) for run_id in run_ids]
    if plot:
        path = config.outputs.figures_dir / "compare.png"
        save_figure(comparison_figure(chosen), path)
        logger.info("Wrote %s", path)
    return chosen


def run_prune(config: Config, keep: int) -> Pruned:
    """Delete the files of the experiment's older runs (see `registry.prune`); the records stay."""
    if keep < 0:
        raise PipelineError(f"--keep {keep}: give a number of runs to keep, 0 or more")
    tagged = {
        str(record["run_id"])
        for record in TRACKER.read_runs(config)
        if (record.get("tags") or {}).get("keep") in (True, "true")
    }
    pruned = prune(config.outputs, config.experiment, keep, tagged)
    TRACKER.pruned(config, pruned.run_ids, pruned.folders)
    return pruned


def run_keep(config: Config, run_id: str) -> str:
    """Tag a run `keep`, so that pruning leaves its files; its full id."""
    folder = find_run(config.outputs, run_id)
    if folder is None:
        raise PipelineError(f"run {run_id!r} has no folder in {config.outputs.runs_dir}")
    metadata = run_metadata(folder)
    metadata["tags"] = {**(metadata.get("tags") or {}), "keep": True}
    write_json(metadata, folder / METADATA)
    TRACKER.tag(config, folder.name, "keep", True)
    return folder.name


def run_evaluate(config: Config) -> dict[str, Metrics]:
    """Score the champion and its baseline again on the champion's own held-out rows (and on rows
    added to the table since it was trained), show the reports in reports/, and write those rows with
    the champion's predictions to data.processed_dir (to look at its errors)."""
    champion = require_champion(config)
    schema, path = champion.schema, config.data.path
    table = check_table(
        read_table(path, hint=_missing_table_hint(config), na_values=config.data.na_values),
        schema,
        source=str(path),
    )
    rows, scored_on = _champion_rows(champion, table, path)
    logger.info(
        "Scoring run %s, the champion of %s, on %s",
        champion.run_id[:8],
        champion.experiment,
        scored_on,
    )
    models = {"baseline": champion.load(BASELINE), "model": champion.load(MODEL)}
    metrics = score_all(models, rows, schema)
    _log_comparison(metrics, schema)
    scored = predict(models["model"], rows, schema)
    scored.insert(len(schema.id_columns), schema.target, rows[schema.target])
    write_table(scored, config.data.evaluated_file)
    logger.info(
        "Wrote the %d rows it scored, with their predictions, to %s",
        len(scored),
        config.data.evaluated_file,
    )
    identity = {**champion.metadata, "scored_on": scored_on}
    written = _write_reports(
        config, identity, models["model"], rows, metrics, config.outputs.reports_dir
    )
    _remove_other_figures(config, written)
    _show_columns(config, champion.run_id)
    logger.info("Wrote %s and the figures in %s", written[0], config.outputs.figures_dir)
    return metrics


def run_predict(
    config: Config, input_file: Path | None = None, *, ignore_extra: bool = False
) -> pd.DataFrame:
    """Score a table with the champion: its columns must be the features the model was trained on
    (and its ID columns, passed through); a target column is left out, any other column is an error
    unless `ignore_extra`. The whole table at once: `predict_chunks` bounds the memory."""
    return pd.concat(list(predict_chunks(config, input_file, ignore_extra=ignore_extra)))


def predict_chunks(
    config: Config,
    input_file: Path | None = None,
    *,
    ignore_extra: bool = False,
    rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """`run_predict`, a chunk of at most `rows` rows at a time, in order: the model loads once, each
    chunk is checked and scored, and memory stays bounded whatever the file's size. Without an input
    file, the config's table (data.path)."""
    champion = require_champion(config)
    schema = champion.schema
    model = champion.load(MODEL)
    path = input_file or config.data.path
    logger.info(
        "Scoring %s with run %s, the champion of %s", path, champion.run_id[:8], champion.experiment
    )
    for chunk in read_table_chunks(path, rows, na_values=config.data.na_values):
        frame = check_table(
            chunk, schema, source=str(path), labelled=False, ignore_extra=ignore_extra
        )
        yield predict(model, frame, schema)


def require_champion(config: Config) -> Champion:
    """The champion of the config's experiment, trained for what the config declares."""
    champion = find_champion(config.outputs, config.experiment)
    if champion is None:
        raise PipelineError(
            f"experiment {config.experiment} has no champion yet: run `make train` (the first run "
            "of an experiment becomes its champion)"
        )
    problem = _mismatch(config, champion)
    if problem:
        raise PipelineError(
            f"{problem}: promote a run trained with this config (`train --promote`), or name a "
            "new experiment in tracking.experiment"
        )
    return champion


def _mismatch(config: Config, champion: Champion) -> str | None:
    """How the champion's target, task or features differ from the config's, in words; None when
    they agree (features inferred from the table are checked against the table instead)."""
    schema, data = champion.schema, config.data
    who = f"the champion of {champion.experiment} (run {champion.run_id[:8]})"
    if (schema.target, schema.task) != (data.target, data.task):
        return (
            f"{who} predicts '{schema.target}' by {schema.task}; the config asks for "
            f"'{data.target}' by {data.task}"
        )
    if data.features is not None and set(data.features) != set(schema.features):
        return (
            f"{who} was trained on the features {sorted(schema.features)}; data.features lists "
            f"{sorted(data.features)}"
        )
    positive = data.positive_class
    if schema.binary and positive is not None and not same_label(schema.positive_class, positive):
        return (
            f"{who} finds the class {schema.positive_class!r}; data.positive_class is {positive!r}"
        )
    params = champion.metadata.get("params") or {}
    threshold = params.get("decision.threshold", DEFAULT_THRESHOLD)  # earlier versions: 0.5
    if schema.binary and threshold != config.decision.threshold:
        return (
            f"{who} decides from decision.threshold {threshold}; the config asks for "
            f"{config.decision.threshold}"
        )
    return None


def _champion_rows(champion: Champion, table: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str]:
    """The rows of the (checked) table the champion never trained on, and which they are, in words."""
    schema, run, metadata = champion.schema, champion.run_id[:8], champion.metadata
    damaged = PipelineError(
        f"{champion.folder / METADATA}: the record of run {run}'s split is damaged: promote "
        "another run"
    )
    recorded = metadata.get("split")
    if recorded is None:  # a run of an earlier version: it recorded its seed and test size
        params, tags = metadata.get("params"), metadata.get("tags")
        if not (isinstance(params, dict) and isinstance(tags, dict)):
            raise damaged
        seed, test_size = params.get("seed"), params.get("data.test_size")
        if not (isinstance(seed, int) and isinstance(test_size, float) and 0 < test_size < 1):
            raise damaged
        if fingerprint(path) != tags.get("data_fingerprint"):
            raise DataValidationError(
                f"{path} changed since run {run} was trained, and that run (of an earlier version "
                "of this project) recorded no held-out rows to find again: train on this table "
                "and promote the new run"
            )
        _, test = split(table, schema, test_size=test_size, seed=seed)
        return test, f"its {len(test)} held-out rows"
    rows = recorded.get("rows") if isinstance(recorded, dict) else None
    expected = recorded.get("held_out_rows") if isinstance(recorded, dict) else None
    digest = recorded.get("digest") if isinstance(recorded, dict) else None
    if not (type(rows) is int and type(expected) is int and isinstance(digest, str) and rows > 0):
        raise damaged
    if rows > len(table):
        raise DataValidationError(
            f"{path}: {len(table)} rows, fewer than the {rows} run {run} was split from (rows "
            "removed): its held-out rows cannot be found; evaluate with that table, or train on "
            "this one and promote the new run"
        )
    if HELD_OUT not in champion.sha256:
        raise PipelineError(f"{champion.record}: no SHA-256 of {HELD_OUT}: promote run {run} again")
    mask = load_mask(champion.folder / HELD_OUT, rows, champion.sha256[HELD_OUT])
    if int(mask.sum()) != expected:
        raise damaged
    found = held_out_rows(table, schema, rows, digest, mask)
    if found is None:
        raise DataValidationError(
            f"{path}: the {rows} rows run {run} was split from are not the first rows of this table "
            "any more (rows changed, removed or reordered), so its held-out rows cannot be told "
            "from those it trained on: evaluate with that table, or train on this one and promote "
            "the new run"
        )
    frame, added, repeats = found
    scored_on = f"its {expected} held-out rows"
    if added:
        scored_on += f" and the {added} rows added to {path} since"
        logger.warning("%s has %d rows more than when run %s was trained", path, added, run)
    if repeats:
        logger.warning(
            "%d rows added to %s since repeat rows run %s trained on: left out", repeats, path, run
        )
    return frame, scored_on


def _write_reports(
    config: Config,
    identity: Mapping[str, Any],
    model: Any,
    rows: pd.DataFrame,
    metrics: dict[str, Metrics],
    folder: Path,
) -> list[Path]:
    """metrics.json (naming the run and the rows it was scored on) and the figures, in `folder`."""
    schema = TableSchema.from_json(identity["schema"])
    report = {
        "run_id": identity["run_id"],
        "run_name": identity.get("run_name"),
        "experiment": identity.get("experiment"),
        "scored_on": identity.get("scored_on", f"its {len(rows)} held-out rows"),
        **metrics,
    }
    written = [folder / "metrics.json"]
    write_json(report, written[0])
    for name, figure in figures(model, rows, schema, seed=config.seed).items():
        written.append(folder / "figures" / f"{name}.png")
        save_figure(figure, written[-1])
    logger.debug("Wrote %s and %d figures in %s", written[0].name, len(written) - 1, folder)
    return written


def _show_reports(config: Config, run_id: str) -> None:
    """A champion's reports shown in reports/: its metrics.json and figures copied there."""
    outputs = config.outputs
    source = outputs.run_reports_dir / run_id
    if not (source / "metrics.json").is_file():
        logger.info(
            "Run %s has no reports (an earlier version's run): `evaluate` writes them", run_id[:8]
        )
        return
    written = [outputs.metrics_file]
    copy_file(source / "metrics.json", outputs.metrics_file)
    _show_columns(config, run_id)
    for figure in sorted((source / "figures").glob("*.png")):
        written.append(outputs.figures_dir / figure.name)
        copy_file(figure, written[-1])
    _remove_other_figures(config, written)


def _show_columns(config: Config, run_id: str) -> None:
    """The champion's column roles in reports/ (none for a run of an earlier version)."""
    source = config.outputs.run_reports_dir / run_id / COLUMNS
    if source.is_file():
        copy_file(source, config.outputs.reports_dir / COLUMNS)
    else:
        remove_file(config.outputs.reports_dir / COLUMNS)


def _remove_other_figures(config: Config, written: list[Path]) -> None:
    """The figures in reports/figures of another run than the one just shown there."""
    for name in FIGURES:
        path = config.outputs.figures_dir / f"{name}.png"
        if path not in written:
            remove_file(path)


def _missing_table_hint(config: Config) -> str:
    demo = DEMO_FILES[config.data.task]
    if config.data.path == demo:
        return "run `make data` to write the demo table there"
    return f"put your table there, or set data.path in the config (`make data` writes a demo to {demo})"


def _log_comparison(metrics: Mapping[str, Metrics], schema: TableSchema) -> None:
    for name, values in metrics.items():
        logger.info(
            "%-8s %s", name, "  ".join(f"{key} {value:.3f}" for key, value in values.items())
        )
    primary = primary_metric(schema)
    if primary in metrics["model"] and not beats_baseline(metrics, primary):
        logger.warning("The model does not beat the baseline on %s (held-out rows)", primary)
    if schema.binary and metrics["model"].get("recall") == 0.0:
        logger.warning(
            "The model finds none of the %r rows (recall 0): a lower decision.threshold, or "
            "model.class_weight: balanced, trades precision for recall",
            schema.positive_class,
        )
