"""Linear probes: exact on a linear target, blind to a feature's scale, a column for every class."""

import numpy as np
from sklearn.metrics import r2_score, roc_auc_score

from jaxmed import core


def _data(seed=0, n=400, d=20):
  rng = np.random.default_rng(seed)
  f = rng.standard_normal((n, d))
  w = rng.standard_normal(d)
  return f, f @ w + 0.1 * rng.standard_normal(n), w


def test_ridge_probe_recovers_a_linear_target_whatever_the_feature_scale():
  f, y, _ = _data()
  pred = core.ridge_probe(f[:300], y[:300], f[300:])
  assert r2_score(y[300:], pred) > 0.99
  # one feature scaled by 1e-4 (as an unnormalised embedding might be): standardisation makes it irrelevant
  scaled = f * np.r_[1e-4, np.ones(f.shape[1] - 1)]
  np.testing.assert_allclose(core.ridge_probe(scaled[:300], y[:300], scaled[300:]), pred, rtol=1e-6, atol=1e-6)
  two = core.ridge_probe(f[:300], np.stack([y, -y], 1)[:300], f[300:])  # several targets at once
  np.testing.assert_allclose(two[:, 0], -two[:, 1], atol=1e-6)


def test_logistic_probe_separates_and_keeps_every_class_column():
  f, y, _ = _data(1)
  label = (y > 0).astype(int)
  probs = core.logistic_probe(f[:300], label[:300], f[300:], num_classes=3)
  assert probs.shape == (100, 3) and np.all(probs[:, 2] == 0)  # class 2 never seen in training
  np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
  assert roc_auc_score(label[300:], probs[:, 1]) > 0.97


def test_logistic_probe_with_a_c_grid_picks_the_penalty_by_cross_validation():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 200))                       # one informative feature among 200
  y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(float)
  grid = core.logistic_probe(x[:200], y[:200], x[200:], num_classes=2, c=(1e-3, 1e-2, 1e-1, 1.0))
  loose = core.logistic_probe(x[:200], y[:200], x[200:], num_classes=2, c=100.0)
  np.testing.assert_allclose(grid.sum(1), 1.0)
  from sklearn.metrics import log_loss
  # C = 100 nearly interpolates 200 rows with 200 features: confident and wrong on new rows; the CV grid is not
  assert log_loss(y[200:], grid[:, 1]) < 0.8 * log_loss(y[200:], loose[:, 1])
  assert roc_auc_score(y[200:], grid[:, 1]) > 0.6
