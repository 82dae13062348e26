"""Prediction stage: score new rows with a fitted model."""

from typing import Any

import pandas as pd

from .data import validate


def predict(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: the predicted class and the probability of each class.

    The input must hold every feature column (in any order); a target column, if present, is ignored.
    """
    features = validate(frame, labelled=False)
    result = pd.DataFrame({"prediction": model.predict(features)}, index=frame.index)
    probabilities = model.predict_proba(features)
    for position, label in enumerate(model.classes_):
        result[f"probability_{label}"] = probabilities[:, position]
    return result
