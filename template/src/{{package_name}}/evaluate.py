"""Evaluation stage: metrics of each model on held-out data, and a confusion-matrix figure."""

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from .data import FEATURES, TARGET

Metrics = dict[str, float]


def score(model: Any, test: pd.DataFrame) -> Metrics:
    """Accuracy, balanced accuracy and macro F1 of one fitted model on a labelled frame."""
    actual = test[TARGET]
    predicted = model.predict(test[list(FEATURES)])
    return {
        "accuracy": float(accuracy_score(actual, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(actual, predicted)),
        "f1_macro": float(f1_score(actual, predicted, average="macro", zero_division=0)),
    }


def score_all(models: Mapping[str, Any], test: pd.DataFrame) -> dict[str, Metrics]:
    """`score` for each named model, e.g. {"baseline": {...}, "model": {...}}."""
    return {name: score(model, test) for name, model in models.items()}


def confusion_matrix_figure(model: Any, test: pd.DataFrame, title: str = "model") -> Figure:
    """Counts of actual (rows) against predicted (columns) classes."""
    actual = test[TARGET].to_numpy()
    predicted = model.predict(test[list(FEATURES)])
    labels = np.unique(np.concatenate([actual, predicted]))
    counts = confusion_matrix(actual, predicted, labels=labels)
    figure = Figure(figsize=(5, 4), dpi=100)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if count > counts.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    axes.set_xticks(range(len(labels)), [str(label) for label in labels])
    axes.set_yticks(range(len(labels)), [str(label) for label in labels])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("actual class")
    axes.set_title(f"Confusion matrix: {title}")
    figure.tight_layout()
    return figure
