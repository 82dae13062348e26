"""Prediction stage: score new rows with a fitted model."""

from typing import Any

import pandas as pd

from .data import TableSchema


def predict(model: Any, frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """One row per input row: the ID columns as given, the prediction and, for classification, the
    probability of each class (`probability_<class>`). `frame` is checked against `schema` first
    (see `data.check_table`)."""
    features = frame[list(schema.features)]
    result = frame[list(schema.id_columns)].copy()
    result["prediction"] = model.predict(features)
    if schema.task == "classification" and hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(features)
        for position, label in enumerate(model.classes_):
            result[f"probability_{label}"] = probabilities[:, position]
    return result
