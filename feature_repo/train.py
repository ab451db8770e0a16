"""Build a training set, fit a trip-completion model, evaluate it and register it as "production".

    python train.py            # inside the feature repo, after `pitstop apply`
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from pitstop import FeatureStore

REPO = Path(__file__).parent
SERVICE = "driver_activity"
MODEL = "trip_completion"


def main() -> None:
    store = FeatureStore(REPO)
    job = store.get_historical_features(REPO / "data" / "entity_rows.parquet", feature_service=SERVICE)
    frame = job.to_pandas()
    columns = job.feature_names  # the service's features, in signature order
    usable = frame.dropna(subset=columns)
    X, y = usable[columns], usable["trip_completed"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7)
    model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    scores = model.predict_proba(X_test)[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(y_test, scores >= 0.5)),
        "auc": float(roc_auc_score(y_test, scores)) if len(np.unique(y_test)) > 1 else float("nan"),
        "train_rows": float(len(X_train)),
    }
    version = store.models.register(MODEL, model, "sklearn", feature_service=SERVICE, metrics=metrics,
                                    training_set=job, alias="production",
                                    serving={"predict_method": "predict_proba"})
    print(f"registered {MODEL} version {version.version} as production: {metrics}")


if __name__ == "__main__":
    main()
