"""Evaluation stage: task-aware metrics of each model on held-out data, and figures of the model.

Classification: accuracy, balanced accuracy, macro F1 and, where the model gives probabilities, ROC AUC;
for two classes also the precision, recall and F1 of the positive class and the average precision
(the area under the precision-recall curve). A confusion matrix and, for two classes, the ROC and
precision-recall curves. Regression: RMSE, MAE and R²; predicted against actual values, and residuals.
Both: permutation importance of each feature column. Figures are drawn by scikit-learn's display
helpers on `matplotlib.figure.Figure` objects (no global pyplot state).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from .data import TableSchema
from .predict import outputs

Metrics = dict[str, float]

# Per task, the metric that decides whether the model beats the baseline (higher is better), and the
# scikit-learn scorer of the same name for permutation importance. Two classes: see `primary_metric`.
PRIMARY_METRIC = {"classification": "balanced_accuracy", "regression": "r2"}
BINARY_PRIMARY_METRIC = "average_precision"
# Every figure `figures` may draw, by file name: a champion's figures replace these in reports/figures.
FIGURES = (
    "confusion_matrix",
    "roc_curve",
    "precision_recall_curve",
    "predicted_vs_actual",
    "residuals",
    "permutation_importance",
)


def primary_metric(schema: TableSchema) -> str:
    """The metric that says whether the model beats the baseline, and that a sweep optimises unless
    told otherwise: R² for regression, balanced accuracy for several classes, and for two classes
    the average precision, which stays meaningful however rare the positive class is and does not
    depend on the decision threshold."""
    return BINARY_PRIMARY_METRIC if schema.binary else PRIMARY_METRIC[schema.task]


def score(model: Any, test: pd.DataFrame, schema: TableSchema) -> Metrics:
    """The task's metrics of one fitted model on a checked, labelled frame."""
    from sklearn import metrics

    actual = test[schema.target]
    predicted, probabilities = outputs(model, test[list(schema.features)], schema)
    if schema.task == "regression":
        return {
            "rmse": float(metrics.root_mean_squared_error(actual, predicted)),
            "mae": float(metrics.mean_absolute_error(actual, predicted)),
            "r2": float(metrics.r2_score(actual, predicted)),
        }
    result = {
        "accuracy": float(metrics.accuracy_score(actual, predicted)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(actual, predicted)),
        "f1_macro": float(metrics.f1_score(actual, predicted, average="macro", zero_division=0)),
    }
    if schema.binary:
        positive = {"pos_label": schema.positive_class, "zero_division": 0}
        result["precision"] = float(metrics.precision_score(actual, predicted, **positive))
        result["recall"] = float(metrics.recall_score(actual, predicted, **positive))
        result["f1"] = float(metrics.f1_score(actual, predicted, **positive))
    if probabilities is None:
        return result
    auc = _roc_auc(list(getattr(model, "classes_", [])), actual, probabilities, schema)
    if auc is not None:
        result["roc_auc"] = auc
    if schema.binary and (actual == schema.positive_class).any():
        column = list(model.classes_).index(schema.positive_class)
        result["average_precision"] = float(
            metrics.average_precision_score(
                actual == schema.positive_class, probabilities[:, column]
            )
        )
    return result


def positive_probability(
    model: Any, frame: pd.DataFrame, schema: TableSchema
) -> npt.NDArray[np.float64]:
    """Each row's probability of the positive class (two classes, a model with probabilities)."""
    column = list(model.classes_).index(schema.positive_class)
    probabilities: npt.NDArray[np.float64] = model.predict_proba(frame[list(schema.features)])[
        :, column
    ]
    return probabilities


def score_all(
    models: Mapping[str, Any], test: pd.DataFrame, schema: TableSchema
) -> dict[str, Metrics]:
    """`score` for each named model, e.g. {"baseline": {...}, "model": {...}}."""
    return {name: score(model, test, schema) for name, model in models.items()}


def beats_baseline(metrics: Mapping[str, Metrics], primary: str) -> bool:
    """Whether the model scores higher than the baseline on the primary metric."""
    return metrics["model"][primary] > metrics["baseline"][primary]


def figures(
    model: Any, test: pd.DataFrame, schema: TableSchema, seed: int = 0
) -> dict[str, Figure]:
    """The task's figures of one fitted model, by file name (without suffix)."""
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        PredictionErrorDisplay,
        RocCurveDisplay,
    )

    actual = test[schema.target]
    predicted, probabilities = outputs(model, test[list(schema.features)], schema)
    drawn: dict[str, Figure] = {}
    if schema.task == "classification":
        figure, axes = _figure()
        ConfusionMatrixDisplay.from_predictions(actual, predicted, ax=axes, colorbar=False)
        axes.set_title("Confusion matrix (held-out rows)")
        drawn["confusion_matrix"] = figure
        if schema.binary and probabilities is not None:
            label = schema.positive_class
            positive = probabilities[:, list(model.classes_).index(label)]
            figure, axes = _figure()
            RocCurveDisplay.from_predictions(
                actual, positive, pos_label=label, name="model", ax=axes
            )
            axes.set_title(f"ROC curve (positive class: {label})")
            drawn["roc_curve"] = figure
            figure, axes = _figure()
            PrecisionRecallDisplay.from_predictions(
                actual, positive, pos_label=label, name="model", ax=axes, plot_chance_level=True
            )
            axes.set_title(f"Precision-recall curve (positive class: {label})")
            drawn["precision_recall_curve"] = figure
    else:
        for kind, name in (
            ("actual_vs_predicted", "predicted_vs_actual"),
            ("residual_vs_predicted", "residuals"),
        ):
            figure, axes = _figure()
            PredictionErrorDisplay.from_predictions(actual, predicted, kind=kind, ax=axes)
            axes.set_title(name.replace("_", " ").capitalize() + " (held-out rows)")
            drawn[name] = figure
    drawn["permutation_importance"] = importance_figure(model, test, schema, seed)
    for figure in drawn.values():
        figure.tight_layout()
    return drawn


# Permutation importance predicts a sample of rows again for each column shuffled, each repeat: in all,
# at most IMPORTANCE_VALUES values (rows x columns), whatever the table's size. Up to 2,000 rows and 5
# repeats; a wide table gets one repeat of a seeded sample of its columns (20 or more), on fewer rows.
# The shuffled copies are predicted together, IMPORTANCE_BATCH values at a time: a prediction has a
# fixed cost (the pipeline's checks and steps) that one call per column and repeat pays 100 times.
IMPORTANCE_ROWS = 2_000
IMPORTANCE_VALUES = 40_000_000
IMPORTANCE_BATCH = 2_000_000
MIN_SHUFFLED = 20


def importance_figure(model: Any, test: pd.DataFrame, schema: TableSchema, seed: int) -> Figure:
    """How much the primary metric drops when one feature column is shuffled (the 20 that matter
    most, at a bounded cost: see IMPORTANCE_VALUES)."""
    features = test[list(schema.features)]
    title = "Permutation importance (held-out rows)"
    width = features.shape[1]
    rows = min(len(features), IMPORTANCE_ROWS, IMPORTANCE_VALUES // (MIN_SHUFFLED * width))
    shuffles = max(MIN_SHUFFLED, IMPORTANCE_VALUES // (max(rows, 1) * width))
    rng = np.random.default_rng(seed)
    columns = list(features.columns)
    if width > shuffles:  # a seeded sample of the columns, the others left as they are
        columns = [columns[index] for index in np.sort(rng.choice(width, shuffles, replace=False))]
        title += f"\n{shuffles} of its {width} columns, sampled, on {rows} rows"
    sample = np.sort(rng.choice(len(features), rows, replace=False))
    drops = permutation_drops(
        model,
        features.iloc[sample].reset_index(drop=True),
        test[schema.target].iloc[sample].reset_index(drop=True),
        schema,
        columns,
        repeats=max(1, min(5, shuffles // len(columns))),
        rng=rng,
    )
    order = np.argsort(drops.mean(axis=1))[-20:]
    figure, axes = _figure(height=max(3.0, 0.3 * len(order) + 1.0))
    axes.boxplot(drops[order].T, orientation="horizontal", tick_labels=[columns[i] for i in order])
    axes.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel(f"drop in {primary_metric(schema)} when the column is shuffled")
    axes.set_title(title)
    return figure


def permutation_drops(
    model: Any,
    rows: pd.DataFrame,
    actual: pd.Series,
    schema: TableSchema,
    columns: Sequence[str],
    *,
    repeats: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """For each of `columns`, `repeats` times: the primary metric on `rows` as they are, minus the
    metric with that column's values shuffled among the rows (an array of columns x repeats)."""
    reference = primary_score(actual, primary_outputs(model, rows, schema), schema)
    positions = rows.columns.get_indexer(pd.Index(columns))
    shuffles = [int(position) for position in positions for _ in range(repeats)]
    count, per_batch = len(rows), max(1, IMPORTANCE_BATCH // max(rows.size, 1))
    drops = np.empty(len(shuffles))
    for start in range(0, len(shuffles), per_batch):
        batch = shuffles[start : start + per_batch]
        copies = pd.concat([rows] * len(batch), ignore_index=True)
        for index, position in enumerate(batch):  # in copy `index`, one column shuffled
            order = rng.permutation(count)
            shuffled = rows.iloc[order, position].array  # its type kept: dates with a time zone
            copies.iloc[index * count : (index + 1) * count, position] = shuffled
        outputs = primary_outputs(model, copies, schema)
        for index, block in enumerate(np.split(outputs, len(batch))):
            drops[start + index] = reference - primary_score(actual, block, schema)
    return drops.reshape(len(columns), repeats)


def primary_outputs(model: Any, frame: pd.DataFrame, schema: TableSchema) -> npt.NDArray[Any]:
    """What the primary metric scores: for two classes the probability of the positive class
    (average precision), else the predictions."""
    if primary_metric(schema) == BINARY_PRIMARY_METRIC:
        return positive_probability(model, frame, schema)
    return outputs(model, frame[list(schema.features)], schema)[0]


def primary_score(actual: pd.Series, outputs: npt.NDArray[Any], schema: TableSchema) -> float:
    """The primary metric of `primary_outputs` against the actual values."""
    from sklearn import metrics

    primary = primary_metric(schema)
    if primary == BINARY_PRIMARY_METRIC:
        positive = np.asarray(actual == schema.positive_class)
        return float(metrics.average_precision_score(positive, outputs))
    if primary == "r2":
        return float(metrics.r2_score(actual, outputs))
    return float(metrics.balanced_accuracy_score(actual, outputs))


def comparison_figure(records: Sequence[Mapping[str, Any]]) -> Figure:
    """Several runs side by side: one panel per model metric, one bar per run (baseline dashed)."""
    names = [str(record.get("run_name") or str(record["run_id"])[:8]) for record in records]
    metrics = sorted(
        {key for record in records for key in record.get("metrics", {}) if key.startswith("model.")}
    )
    figure = Figure(figsize=(3.0 * max(len(metrics), 1), 3.5), dpi=100)
    panels = figure.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for axes, metric in zip(panels, metrics, strict=False):
        values = [record["metrics"].get(metric, np.nan) for record in records]
        axes.bar(range(len(names)), values, color="tab:blue")
        baseline = [
            record["metrics"].get("baseline." + metric.removeprefix("model.")) for record in records
        ]
        if all(value is not None for value in baseline):
            axes.hlines(
                baseline,
                [i - 0.4 for i in range(len(names))],
                [i + 0.4 for i in range(len(names))],
                colors="grey",
                linestyles="--",
                label="baseline",
            )
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
        axes.set_title(metric.removeprefix("model."))
    figure.suptitle("Runs side by side (held-out rows; dashed: baseline)")
    figure.tight_layout()
    return figure


def _roc_auc(
    classes: list[Any], actual: pd.Series, probabilities: npt.NDArray[Any], schema: TableSchema
) -> float | None:
    """ROC AUC (one-vs-rest for several classes) of a model's probabilities of its `classes`, or
    None without every class among the held-out rows."""
    from sklearn.metrics import roc_auc_score

    if set(actual) != set(classes) or len(classes) < 2:
        return None
    if schema.binary:
        positive = actual == schema.positive_class
        column = classes.index(schema.positive_class)
        return float(roc_auc_score(positive, probabilities[:, column]))
    return float(roc_auc_score(actual, probabilities, multi_class="ovr", labels=classes))


def _figure(height: float = 4.0) -> tuple[Figure, Any]:
    figure = Figure(figsize=(6, height), dpi=100)
    return figure, figure.subplots()
