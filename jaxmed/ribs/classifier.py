"""Stump vs full rib classifiers on morphology features, and their metrics (scikit-learn).

``logistic``: standardised features, L2 logistic regression whose strength is
chosen by 5-fold cross-validation on the training ribs (``LogisticRegressionCV``,
10 values of C; with ~100 features and a few hundred ribs a fixed C = 1
overfits). ``gbm``:
gradient-boosted trees (``HistGradientBoostingClassifier``, which also takes
missing values). ``mlp``: a small standardised MLP. Missing features (NaN,
e.g. a vertebra part outside a cropped field of view) are imputed with the
training median for the linear and MLP models.
"""

from __future__ import annotations

import numpy as np

KINDS = ("logistic", "gbm", "mlp")


def feature_matrix(features: list[dict[str, float]], names) -> np.ndarray:
  """``[N, F]`` float64 from feature dicts (a missing name is NaN)."""
  return np.array([[f.get(n, np.nan) for n in names] for f in features], np.float64)


def fit_stump_classifier(x: np.ndarray, y: np.ndarray, kind: str = "logistic", seed: int = 0):
  """A fitted scikit-learn pipeline with ``predict_proba``; ``y``: 1 = stump."""
  from sklearn.ensemble import HistGradientBoostingClassifier
  from sklearn.impute import SimpleImputer
  from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
  from sklearn.neural_network import MLPClassifier
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  if kind not in KINDS:
    raise ValueError(f"fit_stump_classifier: kind must be one of {KINDS}, got {kind!r}")
  y = np.asarray(y, int)
  if len(np.unique(y)) < 2:
    raise ValueError("fit_stump_classifier: the training ribs hold only one class; need stumps and full ribs")
  if kind == "gbm":
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=8, random_state=seed)
  elif kind == "mlp":
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          MLPClassifier((32,), alpha=1e-2, max_iter=2000, random_state=seed))
  else:
    folds = int(min(5, np.bincount(y).min()))   # a class with one rib cannot be cross-validated: C = 1
    head = (LogisticRegressionCV(Cs=10, cv=folds, scoring=None, max_iter=2000) if folds >= 2
            else LogisticRegression(C=1.0, max_iter=2000))
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), head)
  import warnings
  with warnings.catch_warnings():   # scikit-learn 1.8's notices about LogisticRegressionCV's future defaults
    warnings.simplefilter("ignore", FutureWarning)
    return model.fit(x, y)


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
  """F1, precision, recall (positive = stump) at ``threshold``, and AUROC of ``score`` (NaN with one class)."""
  from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
  y_true = np.asarray(y_true, int)
  pred = (np.asarray(score) >= threshold).astype(int)
  out = {"f1": float(f1_score(y_true, pred, zero_division=0.0)),
         "precision": float(precision_score(y_true, pred, zero_division=0.0)),
         "recall": float(recall_score(y_true, pred, zero_division=0.0))}
  out["auroc"] = float(roc_auc_score(y_true, score)) if len(np.unique(y_true)) == 2 else float("nan")
  return out
