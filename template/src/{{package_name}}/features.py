"""Feature stage: the preprocessing steps, a `ColumnTransformer` of named, replaceable steps.

Numeric columns: missing values filled with the training median, then standardised. Categorical columns
(text, booleans, pandas categories): missing values become their own category, then one-hot encoded;
a category first seen at scoring time is encoded as all zeros, not an error. Swap or add a step by name,
e.g. `("log", FunctionTransformer(np.log1p))` before `scale`; models receive the output.
"""

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

FeatureKind = Literal["numeric", "categorical"]
MISSING_CATEGORY = "(missing)"


def feature_kind(column: pd.Series) -> FeatureKind:
    """Numbers are numeric; text, booleans and pandas categories are categorical."""
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return "categorical"
    return "numeric"


def as_text(frame: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Categories as text, missing values as NaN: `True`, "True" and a category read back from a CSV
    file all encode alike."""
    text = frame.astype("object").astype(str).to_numpy(dtype=object)
    result: npt.NDArray[np.object_] = np.where(frame.isna().to_numpy(), np.nan, text)
    return result


def build_preprocessor(feature_kinds: Mapping[str, FeatureKind]) -> ColumnTransformer:
    """The steps for these columns, in this order; other columns are dropped."""
    numeric = [name for name, kind in feature_kinds.items() if kind == "numeric"]
    categorical = [name for name, kind in feature_kinds.items() if kind == "categorical"]
    return ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
                        ),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
