"""Feature stage: the preprocessing steps, as a scikit-learn `Pipeline` of named, replaceable steps.

Add a step (e.g. `("log", FunctionTransformer(np.log1p))`) or swap one by name; models receive its output.
"""

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def build_preprocessor() -> Pipeline:
    """Fill missing values with the training median, then standardise every feature."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
    )
