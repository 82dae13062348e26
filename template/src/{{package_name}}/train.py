"""Training stage: fit the baseline and the model on the training rows."""

import logging
from typing import Any

import pandas as pd

from .data import TableSchema
from .errors import DataValidationError
from .models import DEFAULT_THRESHOLD, ModelConfig, build_baseline, build_model, with_threshold

logger = logging.getLogger(__name__)

# Folds of the training rows a threshold rule (decision.threshold: max_f1, ...) is chosen on.
THRESHOLD_FOLDS = 5


def fit(
    model_config: ModelConfig,
    train: pd.DataFrame,
    schema: TableSchema,
    *,
    seed: int,
    threshold: float | str = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """The fitted baseline and model, by name: {"baseline": ..., "model": ...}. A two-class model
    says positive from `threshold` (see `models.with_threshold`)."""
    features, target = train[list(schema.features)], train[schema.target]
    model = build_model(model_config, task=schema.task, feature_kinds=schema.features, seed=seed)
    if threshold != DEFAULT_THRESHOLD:
        folds = threshold_folds(threshold, schema, target)
        model = with_threshold(model, threshold, schema.positive_class, folds)
    models = {"baseline": build_baseline(schema.task), "model": model}
    for name, estimator in models.items():
        logger.info("Fitting the %s on %d rows", name, len(train))
        estimator.fit(features, target)
    return models


def threshold_folds(threshold: float | str, schema: TableSchema, target: pd.Series) -> int:
    """How many folds of the training rows a threshold rule is chosen on (0 for a fixed threshold);
    a threshold on a table of more than two classes, or a rule with too few rows, is an error."""
    if threshold == DEFAULT_THRESHOLD:
        return 0
    if not schema.binary:
        what = f"{len(schema.classes)} classes" if schema.classes else "numbers (regression)"
        raise DataValidationError(
            f"decision.threshold {threshold}: a threshold applies to two classes, and column "
            f"'{schema.target}' holds {what}: leave it at {DEFAULT_THRESHOLD}, the default"
        )
    if not isinstance(threshold, str):
        return 0
    smallest = int(target.value_counts().min())
    if smallest < 2:
        raise DataValidationError(
            f"decision.threshold {threshold}: choosing it on folds of the training rows needs 2 "
            "rows of each class in them: give a number instead"
        )
    return min(THRESHOLD_FOLDS, smallest)
