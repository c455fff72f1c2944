"""Cox partial likelihood and C-index against lifelines (rossi) and a direct NumPy reference."""

import jax
import numpy as np
import pytest
import scipy.optimize as so

from jaxmed.pathology import concordance_index, cox_loss


def _breslow_reference(eta, time, event):
  ll = 0.0
  for i in np.nonzero(event)[0]:
    ll += eta[i] - np.log(np.exp(eta[time >= time[i]]).sum())
  return -ll / event.sum()


def test_breslow_matches_a_direct_sum_and_padding_is_ignored():
  rng = np.random.default_rng(0)
  eta, time, event = rng.standard_normal(30), rng.integers(1, 8, 30).astype(float), rng.integers(0, 2, 30)
  np.testing.assert_allclose(float(cox_loss(eta, time, event)), _breslow_reference(eta, time, event), rtol=1e-5)
  padded = [np.concatenate([a, np.full(5, v)]) for a, v in ((eta, 50.0), (time, 0.5), (event, 1))]
  mask = np.arange(35) < 30
  np.testing.assert_allclose(float(cox_loss(*padded, mask)), float(cox_loss(eta, time, event)), rtol=1e-6)
  # without ties Efron equals Breslow
  t = rng.permutation(30).astype(float)
  np.testing.assert_allclose(float(cox_loss(eta, t, event, ties="efron")), float(cox_loss(eta, t, event)), rtol=1e-6)


def test_linear_cox_and_cindex_match_lifelines_on_rossi():
  lifelines = pytest.importorskip("lifelines")
  from lifelines.datasets import load_rossi
  from lifelines.utils import concordance_index as lifelines_cindex

  df = load_rossi()
  x = df.drop(columns=["week", "arrest"]).to_numpy(float)
  t, e = df["week"].to_numpy(float), df["arrest"].to_numpy(float)
  ref = lifelines.CoxPHFitter().fit(df, "week", "arrest")  # Efron ties
  mu, sd = x.mean(0), x.std(0)
  xs = (x - mu) / sd
  with jax.enable_x64(True):
    value_and_grad = jax.jit(jax.value_and_grad(lambda b: cox_loss(xs @ b, t, e, ties="efron")))
    fit = so.minimize(lambda b: tuple(np.asarray(v, np.float64) for v in value_and_grad(b)),
                      np.zeros(x.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-9})
  beta = fit.x / sd
  np.testing.assert_allclose(beta, ref.params_.to_numpy(), atol=1e-3)
  risk = x @ beta
  assert concordance_index(risk, t, e) == lifelines_cindex(t, -risk, e)
  # ties in risk and censored-at-the-same-time pairs follow lifelines exactly
  rng = np.random.default_rng(1)
  r = rng.integers(0, 3, 200).astype(float)
  tt, ee = rng.integers(1, 10, 200).astype(float), rng.integers(0, 2, 200)
  assert concordance_index(r, tt, ee) == lifelines_cindex(tt, -r, ee)
