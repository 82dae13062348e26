"""Training stage: fit the baseline and the model on the training rows, on the cores given."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
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
    cores: int | None = None,
) -> dict[str, Any]:
    """The fitted baseline and model, by name: {"baseline": ..., "model": ...}. A two-class model
    says positive from `threshold` (see `models.with_threshold`). The fit uses `cores` cores (None:
    all this process may use)."""
    features, target = train[list(schema.features)], train[schema.target]
    model = build_model(model_config, task=schema.task, feature_kinds=schema.features, seed=seed)
    if threshold != DEFAULT_THRESHOLD:
        folds = threshold_folds(threshold, schema, target)
        model = with_threshold(model, threshold, schema.positive_class, folds)
    models = {"baseline": build_baseline(schema.task), "model": model}
    with using_cores(cores or available_cores()):
        for name, estimator in models.items():
            logger.info("Fitting the %s on %d rows", name, len(train))
            estimator.fit(features, target)
    return models


def available_cores() -> int:
    """The processor cores this process may use: its CPU affinity, which a container's or
    `taskset`'s limit sets, else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def using_cores(cores: int) -> Iterator[None]:
    """Within the block, models fit on `cores` cores: the threads of OpenMP and BLAS (gradient
    boosting, linear models, PyTorch) through threadpoolctl, and joblib's (a forest's trees, fitted
    with `n_jobs=None`) through its parallel_config. `sweep --workers K` gives each worker its
    share, so that K workers do not run K times as many threads as there are cores."""
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    # The threading backend: joblib keeps a context's n_jobs only for the backend it names, and a
    # forest asks for threads.
    with threadpool_limits(limits=cores), parallel_config(backend="threading", n_jobs=cores):
        yield


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
