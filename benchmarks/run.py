"""How fast is the whole experience? Prints one figure a line, each the median of several runs.

    uv run python -m benchmarks.run [--runs N] [--cold] [--suite] [--image] [--team] [--tables] [--serve]

Not a test: machines here are shared and noisy, so figures are printed to be compared over time, never
asserted. The output format is described in README.md ("Benchmark").
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.helpers import (
    TEMPLATE,
    container_engine,
    copy_template_tree,
    free_port,
    git_identity,
    git_init,
    project_env,
)
from tests.services import mlflow_server, postgres, postgres_bin

ROOT = Path(__file__).resolve().parents[1]


def sh(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, expect: int = 0) -> str:
    done = subprocess.run(
        list(args), cwd=cwd, env=env or project_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != expect:
        raise SystemExit(f"`{' '.join(args)}` failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(runs: int, prepare: Callable[[int], Callable[[], object]]) -> float:
    """Median wall time of `runs` runs; `prepare(i)` does untimed set-up and returns the timed action."""
    return statistics.median(timed(prepare(i)) for i in range(runs))


HEADER = f"{'figure':<24} {'median':>9} unit {'ratio':>7} {'goal':>9} met  note"


def report(
    name: str,
    value: float,
    unit: str = "s",
    note: str = "",
    *,
    reference: float | None = None,
    goal: float | None = None,
) -> None:
    """One line of the table: the median, its ratio to a reference measured in the same run (when
    there is one), the goal (a ratio when there is a reference, else a value) and whether it is met.
    """
    ratio = value / reference if reference else None
    compared = ratio if ratio is not None else value
    ratio_text = f"{ratio:.2f}x" if ratio is not None else ""
    goal_text = "" if goal is None else (f"<={goal:g}x" if reference else f"<={goal:g} {unit}")
    met = "" if goal is None else ("yes" if compared <= goal else "NO")
    line = f"{name:<24} {value:>9.2f} {unit:<4} {ratio_text:>7} {goal_text:>9} {met:<4} {note}"
    print(line.rstrip(), flush=True)


def copier_copy(src: Path, dest: Path) -> None:
    sh(["copier", "copy", "--defaults", "--quiet", "--vcs-ref", "HEAD", str(src), str(dest)], ROOT)


def clean(work: Path) -> Path:
    """This template's last commit in a clone of its own: Copier copies and commits a dirty working
    tree first, which a user copying a release never pays for."""
    clone = work / "template-clean"
    if not clone.exists():
        sh(["git", "clone", "--quiet", str(TEMPLATE), str(clone)], ROOT)
    return clone


def one_file_template(root: Path) -> Path:
    """Copier's floor: a template of one question and one file, in git like ours."""
    src = root / "floor"
    (src / "template").mkdir(parents=True)
    (src / "copier.yml").write_text(
        "_subdirectory: template\nname:\n  type: str\n  default: x\n", encoding="utf-8"
    )
    (src / "template" / "README.md.jinja").write_text("# {{ name }}\n", encoding="utf-8")
    git_init(src)
    return src


def same_files_template(root: Path, project: Path) -> Path:
    """Copier's floor for as many files as ours: the default project's files, in git, with nothing to
    render. Copier's cost per file (a `git config` run for each file it writes, the paths' templates)
    is in it; the rendering our Jinja asks for is not."""
    src = root / "same-files"
    ignore = shutil.ignore_patterns(".git", ".copier-answers.yml")
    shutil.copytree(project, src / "template", ignore=ignore)
    (src / "copier.yml").write_text("_subdirectory: template\n", encoding="utf-8")
    git_init(src)
    return src


def bench_copy(work: Path, runs: int) -> None:
    floor = one_file_template(work)
    ours = median_of(runs, lambda i: lambda: copier_copy(clean(work), work / f"ours-{i}"))
    base = median_of(runs, lambda i: lambda: copier_copy(floor, work / f"floor-{i}"))
    same = same_files_template(work, work / "ours-0")
    files = sum(1 for path in (same / "template").rglob("*") if path.is_file())
    plain = median_of(runs, lambda i: lambda: copier_copy(same, work / f"same-{i}"))
    note = f"Copier's floor {base:.2f} s; the same {files} files, not rendered: {plain:.2f} s"
    report("copy_defaults", ours, reference=base, goal=1.3, note=note)


def set_up_and_check(project: Path, env: dict[str, str]) -> None:
    sh(["make", "setup"], project, env)
    sh(["make", "check"], project, env)


def bench_green(work: Path, runs: int, cold: bool) -> Path:
    env = project_env()

    def fresh(i: int, cache: Path | None = None) -> Callable[[], object]:
        project = work / f"green-{i}"
        run_env = env | ({"UV_CACHE_DIR": str(cache)} if cache else {})

        def action() -> None:
            copier_copy(clean(work), project)
            git_init(project, run_env)
            set_up_and_check(project, run_env)

        return action

    timed(fresh(-1))  # warm the uv cache and pre-commit once
    report("time_to_green_warm", median_of(runs, fresh), goal=20, note="copy, setup, check")
    if cold:
        caches = [Path(tempfile.mkdtemp(prefix="uv-cold-")) for _ in range(runs)]
        report(
            "time_to_green_cold",
            median_of(runs, lambda i: fresh(100 + i, caches[i])),
            note="empty uv cache: downloads included",
        )
    return work / "green-0"


def bench_reference(project: Path, runs: int) -> float:
    """The imports no ML command can avoid: the reference of the ratios below."""
    code = ["uv", "run", "--frozen", "python", "-c", "import sklearn.ensemble, pandas"]
    reference = median_of(runs, lambda i: lambda: sh(code, project))
    report("reference_import", reference, note="uv run python -c 'import sklearn.ensemble, pandas'")
    return reference


def bench_inner_loop(project: Path, runs: int, reference: float) -> None:
    """`make check` unchanged and after editing a stage module; the CLI's help and a config error."""
    check = median_of(runs, lambda i: lambda: sh(["make", "check"], project))
    report("check_again_warm", check, reference=reference, goal=3, note="make check, unchanged")
    stage = next((project / "src").glob("*/features.py"))
    original = stage.read_text(encoding="utf-8")

    def edited(i: int) -> Callable[[], object]:
        stage.write_text(f"{original}\n\n# edit {i}\n", encoding="utf-8")
        return lambda: sh(["make", "check"], project)

    try:
        after_edit = median_of(runs, edited)
    finally:
        stage.write_text(original, encoding="utf-8")
    report("check_after_edit", after_edit, reference=reference, goal=3, note="features.py edited")
    # As on CI images (and this machine) where PYTHONDONTWRITEBYTECODE is set: only bytecode compiled
    # at install time helps.
    env = project_env() | {"PYTHONDONTWRITEBYTECODE": "1"}
    cli = str(project / ".venv" / "bin" / "my-ml-project")
    help_seconds = median_of(runs, lambda i: lambda: sh([cli, "--help"], project, env))
    report("cli_help", help_seconds, goal=0.3, note="--help, PYTHONDONTWRITEBYTECODE=1")
    bad = project / "configs" / "bad.yaml"
    bad.write_text("data:\n  test_fraction: 0.2\n", encoding="utf-8")
    try:
        error = [cli, "--config", str(bad), "train"]
        seconds = median_of(runs, lambda i: lambda: sh(error, project, env, expect=2))
    finally:
        bad.unlink()
    report("cli_config_error", seconds, goal=0.3, note="an unknown key, PYTHONDONTWRITEBYTECODE=1")


def bench_update(work: Path, runs: int) -> None:
    """`copier update` (CLI) from 1.0.0 to 1.1.0 of a throwaway repository of this template."""
    src = copy_template_tree(work / "tpl")
    env = git_identity()
    git_init(src)
    sh(["git", "tag", "1.0.0"], src, env)
    (src / "template" / "CODE_OF_CONDUCT.md").write_text("# Code of conduct\n", encoding="utf-8")
    sh(["git", "add", "--all"], src, env)
    sh(["git", "commit", "-qm", "1.1.0"], src, env)
    sh(["git", "tag", "1.1.0"], src, env)

    def prepare(i: int) -> Callable[[], object]:
        project = work / f"update-{i}"
        sh(
            [
                "copier",
                "copy",
                "--defaults",
                "--quiet",
                "--vcs-ref",
                "1.0.0",
                str(src),
                str(project),
            ],
            ROOT,
        )
        git_init(project)
        return lambda: sh(["copier", "update", "--defaults", "--quiet"], project, env)

    report("update_cli", median_of(runs, prepare), note="1.0.0 -> 1.1.0, one file added")


def bench_image(project: Path) -> None:
    engine = container_engine()
    if engine is None:
        print("image_size                        - MB  no container engine")
        return
    tag = "copier-ml-template-benchmark:latest"
    seconds = timed(lambda: sh([engine, "build", "--tag", tag, "."], project))
    size = int(sh([engine, "image", "inspect", tag, "--format", "{{.Size}}"], project).strip())
    base_tag = sh(["sed", "-n", "s/^FROM \\(python:[^ ]*\\)$/\\1/p", "Dockerfile"], project).strip()
    base = int(sh([engine, "image", "inspect", base_tag, "--format", "{{.Size}}"], project).strip())
    report("image_build", seconds, note=f"{engine}, with whatever layer cache the engine holds")
    report("image_size", size / 1e6, "MB", f"of which base {base_tag} {base / 1e6:.0f} MB")
    subprocess.run([engine, "rmi", "--force", tag], capture_output=True, check=False)


# Records 200 runs through the project's own sinks (MLflow and reports/runs.jsonl), without training.
RECORD_RUNS = """
import random
from dataclasses import replace
from pathlib import Path

import mlflow

from my_ml_project.config import load_config
from my_ml_project.mlflow_tracking import as_text
from my_ml_project.records import append_record
from my_ml_project.tracking import TRACKER

config = load_config(Path("configs/train.yaml"))
rng = random.Random(0)
for seed in range(200):
    params = config.model_dump(mode="json")
    params["model"]["max_depth"] = rng.choice([None, 3, 5, 8, 12])
    params["seed"] = seed
    metrics = {"model": {"f1_macro": rng.random()}, "baseline": {"f1_macro": 0.2}}
    with TRACKER.start(config, Path("configs/train.yaml"), None, None) as started:
        record = replace(started, params=params, metrics=metrics, tags={"dirty": False}).record()
        mlflow.log_params({key: as_text(value) for key, value in record["params"].items()})
        mlflow.log_metrics(record["metrics"])
        mlflow.set_tags({key: as_text(value) for key, value in record["tags"].items()})
        append_record(record, config.outputs.runs_file)
"""


def bench_experiments(project: Path, runs: int, reference: float) -> None:
    """`runs` over 200 recorded runs, and the MLflow UI's first answer."""
    env = project_env()
    sh(["uv", "run", "--frozen", "python", "-c", RECORD_RUNS], project, env)
    query = ["uv", "run", "--frozen", "my-ml-project", "runs", "--format", "json"]
    query += ["--filter", "params.model.max_depth > 5", "--sort", "metrics.model.f1_macro:desc"]
    seconds = median_of(runs, lambda i: lambda: sh(query, project, env))
    report("runs_filter_200", seconds, reference=reference, note="200 runs in the MLflow store")

    def first_answer(i: int) -> Callable[[], object]:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def action() -> None:
            server = subprocess.Popen(
                ["make", "mlflow-ui", f"MLFLOW_PORT={port}"],
                cwd=project,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                for _ in range(600):  # up to two minutes
                    try:
                        with opener.open(url, timeout=2):
                            return
                    except OSError:
                        time.sleep(0.2)
                raise SystemExit("the MLflow UI did not answer within two minutes")
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)

        return action

    report(
        "mlflow_ui_first_answer", median_of(runs, first_answer), note="make mlflow-ui to HTTP 200"
    )


PEAK_MEMORY = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_mib(command: Sequence[str], project: Path) -> float:
    """The peak resident memory of a command, in MiB."""
    kib = sh(["uv", "run", "--frozen", "python", "-c", PEAK_MEMORY, *command], project)
    return int(kib.strip().splitlines()[-1]) / 1024


def bench_predict_memory(project: Path) -> None:
    """Peak memory of `predict` on 800k rows beside 100k rows: streamed in chunks, it stays flat."""
    env = project_env()
    if not (project / "models" / "champions").is_dir():
        sh(["make", "data", "train"], project, env)
    table = project / "data" / "raw" / "wine.csv"
    header, *rows = table.read_text(encoding="utf-8").splitlines()
    peaks = {}
    for count in (100_000, 800_000):
        table = project / f"rows-{count}.csv"
        body = "\n".join(rows[i % len(rows)] for i in range(count))
        table.write_text(f"{header}\n{body}\n", encoding="utf-8")
        command = [
            str(project / ".venv" / "bin" / "my-ml-project"),
            "predict",
            "--input",
            str(table),
        ]
        command += ["--output", str(project / "scored.csv")]
        peaks[count] = peak_mib(command, project)
        table.unlink()
    report(
        "predict_peak_memory_800k",
        peaks[800_000],
        "MiB",
        reference=peaks[100_000],
        goal=1.3,
        note=f"beside 100k rows ({peaks[100_000]:.0f} MiB): chunks of 100k rows",
    )


# A table a team has: 50,000 rows, ten numeric columns, a category of 8 levels, a rare positive class.
TABLE_50K = """
import sys
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
n = int(sys.argv[2])
X = rng.normal(size=(n, 10)).round(4)
channel = rng.choice(list("abcdefgh"), size=n)
logit = 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + (channel == "a") - 3.5
frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
frame.insert(0, "id", np.arange(n))
frame["channel"] = channel
frame["fraud"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
frame.to_csv(sys.argv[1], index=False)
frame.drop(columns="fraud").head(50).to_csv(sys.argv[3], index=False)
"""
BENCH_CONFIG = """data:
  path: data/raw/bench50k.csv
  target: fraud
  task: classification
  id_columns: [id]
outputs: # its own folders: models/ as 10 runs of a new project leave it
  models_dir: bench/models
  reports_dir: bench/reports
tracking:
  experiment: bench50k
"""
# What a data scientist writes to score a few rows with a saved model: load it, predict, write.
BY_HAND = """
import sys
import joblib, pandas as pd
model = joblib.load(sys.argv[1])
rows = pd.read_csv(sys.argv[2])
pd.DataFrame({"prediction": model.predict(rows)}).to_csv(sys.argv[3], index=False)
"""


def bench_models(project: Path, runs: int) -> None:
    """What the default model costs: its file on a 50k-row table, models/ after 10 runs beside the sum
    of their model files, and `predict` of 50 rows beside loading the model and predicting by hand.
    """
    env = project_env()
    table, rows = project / "data" / "raw" / "bench50k.csv", project / "rows50.csv"
    sh(
        ["uv", "run", "--frozen", "python", "-c", TABLE_50K, str(table), "50000", str(rows)],
        project,
    )
    config = project / "configs" / "bench.yaml"
    config.write_text(BENCH_CONFIG, encoding="utf-8")
    cli = [str(project / ".venv" / "bin" / "my-ml-project"), "--config", str(config)]
    for seed in range(10):
        sh([*cli, "train", "--set", f"seed={seed}"], project, env)
    models, runs_dir = project / "bench" / "models", project / "bench" / "models" / "runs"
    sizes = sorted(path.stat().st_size for path in runs_dir.glob("*/model.joblib"))
    models_dir = sum(path.stat().st_size for path in models.rglob("*") if path.is_file())
    report(
        "model_file_50k",
        statistics.median(sizes) / 1e6,
        "MB",
        note="the default model (gradient boosting) on 50,000 rows, 11 features",
    )
    report(
        "models_dir_10_runs",
        models_dir / 1e6,
        "MB",
        reference=sum(sizes) / 1e6,
        goal=1.2,
        note=f"models/ after 10 runs beside their 10 model files ({sum(sizes) / 1e6:.2f} MB)",
    )
    champion = json.loads((models / "champions" / "bench50k.json").read_text(encoding="utf-8"))
    model = runs_dir / champion["run_id"] / "model.joblib"
    predict = [*cli, "predict", "--input", str(rows), "--output", str(project / "out.csv")]
    by_hand = [str(project / ".venv" / "bin" / "python"), "-c", BY_HAND, str(model), str(rows)]
    by_hand.append(str(project / "out-by-hand.csv"))
    env = env | {"PYTHONDONTWRITEBYTECODE": "1"}  # as on CI images: bytecode from install time only
    cli_seconds = median_of(runs, lambda i: lambda: sh(predict, project, env))
    hand_seconds = median_of(runs, lambda i: lambda: sh(by_hand, project, env))
    report(
        "predict_50_rows",
        cli_seconds,
        reference=hand_seconds,
        goal=2,
        note=f"beside loading the model and predicting by hand ({hand_seconds:.2f} s)",
    )
    cli_peak, hand_peak = peak_mib(predict, project), peak_mib(by_hand, project)
    report(
        "predict_50_rows_memory",
        cli_peak,
        "MiB",
        reference=hand_peak,
        goal=2,
        note=f"peak, beside by hand ({hand_peak:.0f} MiB)",
    )


# Tables a team has (issue 22): mixed columns (14 numbers, 3 categories of 5 to 12 levels, a binary
# label), with `big` a category of 100,000 levels and a date added; or `wide`: 5,000 numeric columns.
TABLES = """
import sys
import numpy as np, pandas as pd
kind, rows, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
if kind == "wide":
    numbers = rng.normal(size=(rows, 5000)).astype("float32").round(3)
    frame = pd.DataFrame(numbers, columns=[f"f{i}" for i in range(5000)])
    frame["label"] = (numbers[:, :10].sum(axis=1) + rng.normal(size=rows) > 0).astype(int)
else:
    numbers = rng.normal(size=(rows, 14)).round(4)
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(14)])
    for i, levels in enumerate((5, 12, 8)):
        frame[f"c{i}"] = rng.choice([f"l{j}" for j in range(levels)], size=rows)
    logit = 1.2 * numbers[:, 0] - numbers[:, 1] + 0.5 * numbers[:, 2] * numbers[:, 3] - 1
    logit += frame["c0"].eq("l1")
    if kind == "big":
        shops = rng.integers(0, 100_000, size=rows)
        frame["shop"] = np.char.add("s", shops.astype(str))
        logit += rng.normal(size=100_000)[shops]
        days = rng.integers(0, 3 * 365, size=rows)
        frame["day"] = (np.datetime64("2023-01-01") + days.astype("timedelta64[D]")).astype(str)
        logit += 0.5 * np.sin(days / 58)
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
frame.to_csv(path, index=False)
"""
# What a data scientist writes for the same job as `train`, with the same estimator and encodings:
# read, split, encode (one-hot; target encoding past 20 levels; a date as its parts), fit, score,
# save. It prints the seconds its fit took.
TRAIN_BY_HAND = """
import sys, time
import joblib, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, TargetEncoder

table = pd.read_csv(sys.argv[1])
if "day" in table:
    day = pd.to_datetime(table.pop("day"))
    table["year"], table["month"], table["weekday"] = day.dt.year, day.dt.month, day.dt.weekday
features, target = table.drop(columns="label"), table["label"]
train_x, test_x, train_y, test_y = train_test_split(
    features, target, test_size=0.25, stratify=target, random_state=42
)
text = list(features.select_dtypes(exclude="number").columns)
many = [column for column in text if features[column].nunique() > 20]
encode = ColumnTransformer(
    [
        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         [column for column in text if column not in many]),
        ("target", TargetEncoder(), many),
    ],
    remainder="passthrough",
)
model = Pipeline([("features", encode), ("model", HistGradientBoostingClassifier(random_state=42))])
start = time.perf_counter()
model.fit(train_x, train_y)
fitted = time.perf_counter() - start
print(balanced_accuracy_score(test_y, model.predict(test_x)), file=sys.stderr)
print(average_precision_score(test_y, model.predict_proba(test_x)[:, 1]), file=sys.stderr)
joblib.dump(model, sys.argv[2])
print(fitted)
"""
# Scoring a table with a saved model by hand: load, read, predict, write.
PREDICT_BY_HAND = """
import sys
import joblib, pandas as pd
model = joblib.load(sys.argv[1])
rows = pd.read_csv(sys.argv[2])
pd.DataFrame({"prediction": model.predict(rows.drop(columns="label"))}).to_csv(sys.argv[3], index=False)
"""


def bench_tables(project: Path, runs: int) -> None:
    """`train` and `predict` on tables a team has, beside the hand-written script doing the same
    job with the same library calls: wall time on 200,000 rows, the fixed overhead on 2,000, peak
    memory on 1,000,000 rows with a 100,000-level column and a date, 5,000 columns beside the bare
    fit, and predict's throughput."""
    env = project_env()
    python, cli = str(project / ".venv" / "bin" / "python"), project / ".venv" / "bin"
    tables = project / "tables"
    tables.mkdir(exist_ok=True)

    def table(kind: str, rows: int) -> Path:
        path = tables / f"{kind}-{rows}.csv"
        if not path.exists():
            sh([python, "-c", TABLES, kind, str(rows), str(path)], project, env)
        return path

    def train(path: Path) -> list[str]:
        settings = [f"data.path={path}", "data.target=label", f"outputs.models_dir={tables}/m"]
        settings += [f"outputs.reports_dir={tables}/r", f"tracking.experiment=bench-{path.stem}"]
        return [str(cli / "my-ml-project"), "train", *(f"--set={item}" for item in settings)]

    def by_hand(path: Path) -> list[str]:
        return [python, "-c", TRAIN_BY_HAND, str(path), str(tables / "by-hand.joblib")]

    def paired(path: Path) -> tuple[float, float]:
        ours = median_of(runs, lambda i: lambda: sh(train(path), project, env))
        hand = median_of(runs, lambda i: lambda: sh(by_hand(path), project, env))
        return ours, hand

    sh(train(table("mixed", 2_000)), project, env)  # once first: the store's tables are created
    small, hand = paired(table("mixed", 2_000))
    report(
        "train_overhead_2k",
        small - hand,
        goal=3,
        note=f"train {small:.2f} s minus the script by hand {hand:.2f} s, 2,000 rows",
    )
    mixed = table("mixed", 200_000)
    ours, hand = paired(mixed)
    report(
        "train_200k",
        ours,
        reference=hand,
        goal=1.25,
        note=f"beside the script by hand ({hand:.2f} s), 200,000 rows, 17 features",
    )
    champion = json.loads(
        (tables / "m" / "champions" / f"bench-{mixed.stem}.json").read_text(encoding="utf-8")
    )
    model = tables / "m" / "runs" / champion["run_id"] / "model.joblib"
    predict = [str(cli / "my-ml-project"), "predict", "--set", f"data.path={mixed}"]
    predict += ["--set", "data.target=label", "--set", f"outputs.models_dir={tables}/m"]
    predict += ["--set", f"tracking.experiment=bench-{mixed.stem}"]
    predict += ["--input", str(mixed), "--output", str(tables / "scored.csv")]
    scored = [python, "-c", PREDICT_BY_HAND, str(model), str(mixed), str(tables / "by-hand.csv")]
    ours = median_of(runs, lambda i: lambda: sh(predict, project, env))
    hand = median_of(runs, lambda i: lambda: sh(scored, project, env))
    report(
        "predict_200k",
        ours,
        reference=hand,
        goal=1.5,
        note=f"{200_000 / ours:,.0f} rows/s; by hand {200_000 / hand:,.0f} rows/s",
    )
    big = table("big", 1_000_000)
    start = time.perf_counter()
    ours = peak_mib(train(big), project)
    seconds = time.perf_counter() - start
    hand = peak_mib(by_hand(big), project)
    report(
        "train_1m_memory",
        ours,
        "MiB",
        reference=hand,
        goal=2,
        note=f"1,000,000 rows, 19 features (100,000 levels, a date); train took {seconds:.0f} s",
    )
    wide = table("wide", 2_000)
    ours = median_of(runs, lambda i: lambda: sh(train(wide), project, env))
    fit = statistics.median(float(sh(by_hand(wide), project, env).strip()) for _ in range(runs))
    report(
        "train_5000_columns",
        ours,
        reference=fit,
        goal=2,
        note=f"train end to end beside the bare fit ({fit:.2f} s), 2,000 rows",
    )


# The in-process reference of `serve`: the champion's model.predict of one row, median of 200 calls, ms.
PREDICT_ONE_ROW = """
import statistics, sys, time
import joblib, pandas as pd
model = joblib.load(sys.argv[1])
row = pd.read_csv(sys.argv[2]).drop(columns="target").head(1)
model.predict(row)
seconds = []
for _ in range(200):
    start = time.perf_counter()
    model.predict(row)
    seconds.append(time.perf_counter() - start)
print(statistics.median(seconds) * 1000)
"""


def drive(
    port: int, body: bytes, requests: int, concurrency: int
) -> tuple[list[float], int, float]:
    """`requests` POSTs of `body` to /predict, `concurrency` at a time, each client on a kept-alive
    connection: the latencies (ms) of the answered ones, the number of failures, the wall time."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    def client(count: int) -> tuple[list[float], int]:
        latencies, failures = [], 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        for _ in range(count):
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except OSError:
                connection.close()
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            failures += not ok
        connection.close()
        return latencies, failures

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(client, shares))
    wall = time.perf_counter() - start
    return [ms for latencies, _ in done for ms in latencies], sum(f for _, f in done), wall


def bench_serve(project: Path, requests: int = 2_000, concurrency: int = 16) -> None:
    """`serve` under load on loopback: single rows and 100-row batches, 1 and 2 workers; the p50 of
    a single row beside the champion's own model.predict of one row, in process."""
    env = project_env()
    if not (project / "models" / "champions").is_dir():
        sh(["make", "data", "train"], project, env)
    (record,) = (project / "models" / "champions").glob("*.json")
    champion = json.loads(record.read_text(encoding="utf-8"))
    model = project / "models" / "runs" / champion["run_id"] / "model.joblib"
    table = project / "data" / "raw" / "wine.csv"
    python = str(project / ".venv" / "bin" / "python")
    alone = float(sh([python, "-c", PREDICT_ONE_ROW, str(model), str(table)], project, env))
    rows = json.loads(
        sh([python, "-c", ROWS_AS_JSON, str(table)], project, env)
    )  # the table's rows, as JSON objects without the target
    bodies = {1: json.dumps(rows[:1]).encode(), 100: json.dumps(rows[:100]).encode()}
    cli = str(project / ".venv" / "bin" / "my-ml-project")
    for workers in (1, 2):
        port = free_port()
        server = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--workers", str(workers)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_ready(port, server)
            if workers == 1:  # one client: the server's own cost of a row, no queue before it
                drive(port, bodies[1], 50, 1)
                latencies, failures, _ = drive(port, bodies[1], requests // 4, 1)
                p50 = percentile(latencies, 50)
                note = (
                    f"one client, {failures} failed; {p50 / alone:.1f}x model.predict of a row in "
                    f"process ({alone:.1f} ms)"
                )
                report("serve_1_row_1_client_p50", p50, "ms", note, goal=round(10 + alone, 1))
            for size, body in bodies.items():
                drive(port, body, 100, concurrency)  # warm: each worker's first requests
                latencies, failures, wall = drive(port, body, requests, concurrency)
                p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
                rate = requests / wall
                name = f"serve_{size}_row{'s' if size > 1 else ''}_{workers}w"
                note = f"{rate:.0f} requests/s, p99 {p99:.1f} ms, {failures} failed"
                report(name + "_p50", p50, "ms", f"{concurrency} clients, {note}")
                if size == 1 and workers == 1:
                    goal = round(5 * p50, 1)
                    report(name + "_p99", p99, "ms", f"{failures} failed", goal=goal)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


ROWS_AS_JSON = """
import sys
import pandas as pd
print(pd.read_csv(sys.argv[1]).drop(columns="target").to_json(orient="records"))
"""


def wait_ready(port: int, server: "subprocess.Popen[bytes]") -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(300):  # up to a minute
        try:
            with opener.open(f"http://127.0.0.1:{port}/ready", timeout=2):
                return
        except OSError:
            if server.poll() is not None:
                raise SystemExit("serve stopped before it was ready") from None
            time.sleep(0.2)
    raise SystemExit("serve was not ready within a minute")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share / 100))]


# One process logs `runs` + 1 training runs (the first warms up imports and the store) and prints the
# seconds that logging each of the others to MLflow took (params, metrics, dataset, model, artifacts),
# the HTTP requests that logging made and those of the whole run (MLflow's go through requests).
LOG_RUNS = """
import json, statistics, sys, time
from pathlib import Path
import requests
from my_ml_project import pipeline
from my_ml_project.config import load_config

seconds, requests_made, whole, sent = [], [], [], [0]
send = requests.Session.request
def counted(*args, **kwargs):
    sent[0] += 1
    return send(*args, **kwargs)
requests.Session.request = counted
log = pipeline.TRACKER.log
def timed_log(*args, **kwargs):
    start, before = time.perf_counter(), sent[0]
    log(*args, **kwargs)
    seconds.append(time.perf_counter() - start)
    requests_made.append(sent[0] - before)
pipeline.TRACKER.log = timed_log
config = load_config(Path("configs/train.yaml"))
prepared = pipeline.prepare(config)
for _ in range(int(sys.argv[1]) + 1):
    sent[0] = 0
    pipeline.train_run(config, prepared, Path("configs/train.yaml"))
    whole.append(sent[0])
medians = [statistics.median(figures[1:]) for figures in (seconds, requests_made, whole)]
print(json.dumps(medians))
"""


def bench_team(project: Path, runs: int) -> None:
    """Sweep throughput with 1 and 2 workers (local SQLite), and the time to log one run to the
    local SQLite store and to a team server (PostgreSQL + compose.yaml's MLflow server, on loopback).
    """
    env = project_env()
    sh(["uv", "run", "--frozen", "my-ml-project", "data"], project, env)
    trials = 16
    rates = {}
    sweep = ["uv", "run", "--frozen", "my-ml-project", "sweep", "--trials", str(trials)]

    def sweeping(workers: int) -> Callable[[int], Callable[[], object]]:
        study = ["--workers", str(workers), "--study", f"bench-{workers}"]
        return lambda i: lambda: sh([*sweep, *study[:-1], f"{study[-1]}-{i}"], project)

    for workers in (1, 2):
        rates[workers] = trials * 60 / median_of(runs, sweeping(workers))
    report("sweep_1_worker", rates[1], "/mn", note=f"trials per minute, {trials} trials, SQLite")
    report("sweep_2_workers", rates[2], "/mn", reference=rates[1], note="trials per minute")
    code = ["uv", "run", "--frozen", "python", "-c", LOG_RUNS, str(runs)]
    local, _, _ = json.loads(sh(code, project, env))
    report("log_run_sqlite", local, note="TRACKER.log, local mlruns.db")
    if postgres_bin() is None:
        print("log_run_server: skipped, PostgreSQL is not installed")
        return
    with (
        postgres(project / "docker" / "postgres-init.sh") as database,
        mlflow_server(project, database, env) as member,
    ):
        remote, logging, whole = json.loads(sh(code, project, env | member))
    note = (
        f"team server on loopback, signed in; HTTP requests: {logging:.0f}, {whole:.0f} a whole run"
    )
    report("log_run_server", remote, reference=local, note=note)


def bench_suite() -> None:
    """The template's own quick loop and full suite, once each."""
    env = dict(os.environ)
    quick = ["uv", "run", "pytest", "-m", "not slow", "-n", "2", "-q"]
    report("suite_quick", timed(lambda: sh(quick, ROOT, env)), goal=20, note="-m 'not slow' -n 2")
    full = ["uv", "run", "pytest", "-n", "auto", "-q"]
    report("suite_full", timed(lambda: sh(full, ROOT, env)), goal=600, note="the whole suite, once")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default %(default)s)")
    parser.add_argument(
        "--cold", action="store_true", help="also time to green with empty uv caches"
    )
    parser.add_argument(
        "--image", action="store_true", help="build the image, report size and time"
    )
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite, once")
    parser.add_argument(
        "--team", action="store_true", help="sweep throughput and logging to a team server"
    )
    parser.add_argument(
        "--tables", action="store_true", help="train and predict on tables of 10^5 to 10^6 rows"
    )
    parser.add_argument(
        "--serve", action="store_true", help="serve under load: 2,000 requests, 16 at a time"
    )
    args = parser.parse_args(argv)
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        settings = work / "copier-settings.yml"  # keep the user's own Copier settings out
        settings.write_text("{}\n", encoding="utf-8")
        os.environ["COPIER_SETTINGS_PATH"] = str(settings)
        bench_copy(work, args.runs)
        project = bench_green(work, args.runs, args.cold)
        reference = bench_reference(project, args.runs)
        bench_inner_loop(project, args.runs, reference)
        bench_experiments(project, args.runs, reference)
        bench_predict_memory(project)
        bench_models(project, args.runs)
        bench_update(work, args.runs)
        if args.tables:
            bench_tables(project, args.runs)
        if args.serve:
            bench_serve(project)
        if args.team:
            bench_team(project, args.runs)
        if args.image:
            bench_image(project)
    if args.suite:
        bench_suite()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
