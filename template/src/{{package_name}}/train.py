"""Training stage: fit the baseline and the model on the training rows."""

import logging
from typing import Any

import pandas as pd

from .data import TableSchema
from .models import ModelConfig, build_baseline, build_model

logger = logging.getLogger(__name__)


def fit(
    model_config: ModelConfig, train: pd.DataFrame, schema: TableSchema, *, seed: int
) -> dict[str, Any]:
    """The fitted baseline and model, by name: {"baseline": ..., "model": ...}."""
    features, target = train[list(schema.features)], train[schema.target]
    models = {
        "baseline": build_baseline(schema.task),
        "model": build_model(
            model_config, task=schema.task, feature_kinds=schema.features, seed=seed
        ),
    }
    for name, estimator in models.items():
        logger.info("Fitting the %s on %d rows", name, len(train))
        estimator.fit(features, target)
    return models
