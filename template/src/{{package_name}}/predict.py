"""Prediction stage: score new rows with a fitted model."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .data import TableSchema


def predict(model: Any, frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """One row per input row: the ID columns as given, the prediction and, for classification, the
    probability of each class (`probability_<class>`). `frame` is checked against `schema` first
    (see `data.check_table`)."""
    predicted, probabilities = outputs(model, frame[list(schema.features)], schema)
    result = frame[list(schema.id_columns)].copy()
    result["prediction"] = predicted
    if probabilities is not None:
        for position, label in enumerate(model.classes_):
            result[f"probability_{label}"] = probabilities[:, position]
    return result


def outputs(
    model: Any, features: pd.DataFrame, schema: TableSchema
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None]:
    """`model.predict(features)` and, for a classifier with probabilities, `model.predict_proba`,
    from one pass of the model (its preprocessing and its trees or layers run once, not twice): the
    probabilities, then the prediction from them as the classifier's own `predict` makes it, the
    most probable class or, with a decision threshold (`models.with_threshold`), the positive class
    from the threshold on."""
    if schema.task != "classification" or not hasattr(model, "predict_proba"):
        return np.asarray(model.predict(features)), None
    probabilities: npt.NDArray[np.float64] = np.asarray(model.predict_proba(features))
    classes = np.asarray(model.classes_)
    threshold = getattr(model, "best_threshold_", getattr(model, "threshold", None))
    if not isinstance(threshold, float | int) or len(classes) != 2:
        return classes[probabilities.argmax(axis=1)], probabilities
    positive = list(model.classes_).index(schema.positive_class)
    chosen = np.where(probabilities[:, positive] >= threshold, positive, 1 - positive)
    return classes[chosen], probabilities
