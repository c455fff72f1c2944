"""Linear probes on frozen features: what the features carry, measured without a head's training in the way.

Both standardise the features with the training rows' statistics (so a
feature's scale cannot hide it), then fit scikit-learn's closed-form or
convex models:

* :func:`ridge_probe`: ridge regression, the penalty chosen by efficient
  leave-one-out over ``alphas`` on the training rows (``RidgeCV``);
* :func:`logistic_probe`: L2 logistic regression (``C``), class probabilities
  with a column for every one of ``num_classes`` classes, absent ones zero.

  r2 = sklearn.metrics.r2_score(y_test, ridge_probe(f_train, y_train, f_test))
"""

from __future__ import annotations

import warnings

import numpy as np

ALPHAS = tuple(np.logspace(-2, 4, 13))


def ridge_probe(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, *,
                alphas: tuple[float, ...] = ALPHAS) -> np.ndarray:
  """Test predictions ``[N]`` (or ``[N, K]`` for ``y_train [M, K]``) of a standardised ridge regression."""
  from sklearn.linear_model import RidgeCV
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.asarray(alphas)))
  return model.fit(np.asarray(f_train, np.float64), np.asarray(y_train, np.float64)).predict(
      np.asarray(f_test, np.float64))


def logistic_probe(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, *, num_classes: int,
                   c: float | tuple[float, ...] = 1.0, balanced: bool = False, cv: int = 5) -> np.ndarray:
  """Test class probabilities ``[N, num_classes]`` of a standardised L2 logistic regression; a tuple ``c`` picks
  the inverse penalty by ``cv``-fold cross-validated log-loss on the training rows (``LogisticRegressionCV``)."""
  from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  weight = "balanced" if balanced else None
  if isinstance(c, (tuple, list)):
    clf = LogisticRegressionCV(Cs=list(c), cv=cv, max_iter=3000, class_weight=weight, scoring="neg_log_loss")
  else:
    clf = LogisticRegression(C=c, max_iter=3000, class_weight=weight)
  model = make_pipeline(StandardScaler(), clf)
  with warnings.catch_warnings():   # scikit-learn's notices of LogisticRegressionCV's future attributes
    warnings.simplefilter("ignore", FutureWarning)
    model.fit(np.asarray(f_train, np.float64), np.asarray(y_train))
  probs = np.zeros((len(f_test), num_classes))
  probs[:, model[-1].classes_.astype(int)] = model.predict_proba(np.asarray(f_test, np.float64))
  return probs
