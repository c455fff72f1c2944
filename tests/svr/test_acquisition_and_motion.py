"""The imaging model against the independent NumPy/SciPy stack simulator, and a motion-only fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.ndimage import map_coordinates

from jaxmed import svr
from jaxmed.synth import fetal


@pytest.fixture(scope="module")
def phantom():
  return fetal.fetal_brain_phantom(32, 1.2, seed=0)


def _gt_function(ph):
  inv = jnp.asarray(np.linalg.inv(ph["affine"]), jnp.float32)
  vol = jnp.asarray(ph["volume"])

  def f(x):
    v = x @ inv[:3, :3].T + inv[:3, 3]
    return map_coordinates(vol, [v[:, 0], v[:, 1], v[:, 2]], order=1, mode="constant", cval=0.0)
  return f


@pytest.mark.parametrize("motion", ["none", "uniform"])
def test_acquisition_of_known_volume_reproduces_simulated_slices(phantom, motion):
  stacks = fetal.simulate_stacks(phantom["volume"], phantom["affine"], seed=3, inplane=1.2, thickness=3.6,
                                 motion=motion, max_rot_deg=4, max_trans_mm=2, drift=0.0, noise=0.0)
  sl = svr.device_slices(svr.prepare(stacks))
  offsets, weights = fetal.psf_quadrature((1.2, 1.2), 3.6)
  true_motion = jnp.asarray(np.concatenate([s["motion"] for s in stacks]), jnp.float32)
  pred = svr.acquire(_gt_function(phantom), sl, jnp.arange(len(sl["values"])), jnp.asarray(offsets), true_motion,
                     jnp.asarray(weights))
  np.testing.assert_allclose(np.asarray(pred), np.asarray(sl["values"]), atol=1e-4)  # float32 geometry vs float64 SciPy
  if motion != "none":  # the motion matters: without it the slices differ
    still = svr.acquire(_gt_function(phantom), sl, jnp.arange(len(sl["values"])), jnp.asarray(offsets),
                        jnp.zeros_like(true_motion), jnp.asarray(weights))
    assert np.abs(np.asarray(still) - np.asarray(sl["values"])).max() > 0.1


def test_motion_only_fit_recovers_injected_motion(phantom):
  """True volume fixed: +/-3 deg, +/-1.5 mm per slice is recovered to < 0.5 deg and < 0.3 mm.

  Errors are averaged over slices holding at least a quarter of the largest slice's brain pixels: a slice that
  grazes the brain carries almost no information about its own rotation.
  """
  ph = phantom
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], mask=ph["mask"], seed=1, inplane=1.2, thickness=3.6,
                                 motion="uniform", max_rot_deg=3, max_trans_mm=1.5, drift=0.0, noise=0.0)
  corners = (np.array([[0, 0, 0, 1], [31, 31, 31, 1]]) @ ph["affine"].T)[:, :3]
  sl = svr.prepare(stacks, bbox=corners)   # the grid's corners: the voxel grid reads the volume exactly
  model = svr.SVRModel(svr.volume_inr("grid", shape=(32, 32, 32), init_volume=ph["volume"]),
                       svr.motion_model("free", len(sl["stack"]), 3), drift_weight=0.0)
  params, _ = svr.fit(model, sl, steps=800, lrs={"motion": 1e-2}, key=jax.random.PRNGKey(0), samples_per_step=40000,
                      psf_max=32, psf_schedule="none", final_fraction=0.01, progress=None)
  est = np.asarray(model.slice_motion(params, svr.device_slices(sl)))
  true = np.concatenate([s["motion"] for s in stacks])
  keep = svr.informative_slices(svr.pixel_counts(sl))
  rot = svr.rotation_error_deg(np.asarray(svr.rotation_matrix(jnp.asarray(est[:, :3]))),
                               np.asarray(svr.rotation_matrix(jnp.asarray(true[:, :3], jnp.float32))))
  before = svr.rotation_error_deg(np.broadcast_to(np.eye(3), (len(true), 3, 3)),
                                  np.asarray(svr.rotation_matrix(jnp.asarray(true[:, :3], jnp.float32))))
  assert before[keep].mean() > 2.0
  assert rot[keep].mean() < 0.5, rot[keep].mean()
  assert np.linalg.norm(est[:, 3:] - true[:, 3:], axis=1)[keep].mean() < 0.3


def test_smoothness_penalty_counts_only_consecutive_slices_of_a_stack():
  import jax.numpy as jnp
  from jaxmed.svr import smoothness_penalty
  stack = jnp.array([0, 0, 0, 1, 1])
  motion = jnp.zeros((5, 6)).at[3:, 0].set(1.0)                     # a jump between stacks only: free
  assert float(smoothness_penalty(motion, stack)) == 0.0
  motion = motion.at[1, 0].set(0.3).at[4, 3].set(10.0)              # in-stack changes: 0.3 rad twice, 10 mm once
  expected = (2 * 0.3 ** 2 / 3 + 1e-3 * 10.0 ** 2 / 3) / 3          # per-component means over 3 same-stack pairs
  assert float(smoothness_penalty(motion, stack)) == pytest.approx(expected, rel=1e-5)


def test_zero_mean_motion_fixes_the_frame(phantom):
  """With ``zero_mean_motion`` a shared offset of every slice's parameters is a no-op (the gauge is fixed)."""
  stacks = fetal.simulate_stacks(phantom["volume"], phantom["affine"], seed=2, inplane=1.2, thickness=3.6,
                                 motion="uniform", max_rot_deg=3, max_trans_mm=1.5, noise=0.0)
  sl = svr.device_slices(svr.prepare(stacks))
  n = len(sl["stack"])
  model = svr.SVRModel(svr.volume_inr("grid", shape=(8, 8, 8)), svr.motion_model("free", n, 3),
                       zero_mean_motion=True)
  params = model.init(jax.random.PRNGKey(0), sl)
  raw = jax.random.normal(jax.random.PRNGKey(1), (n, 6)) * 0.05
  params["motion"] = {"params": {"motion": raw}}
  motion = np.asarray(model.slice_motion(params, sl))
  np.testing.assert_allclose(motion.mean(0), 0.0, atol=1e-6)
  shifted = {**params, "motion": {"params": {"motion": raw + jnp.array([0.02, -0.01, 0.03, 0.1, 0.2, -0.1])}}}
  np.testing.assert_allclose(np.asarray(model.slice_motion(shifted, sl)), motion, atol=1e-6)
  # without it the same offset moves every slice
  free = svr.SVRModel(model.volume, model.motion)
  assert np.abs(np.asarray(free.slice_motion(shifted, sl)) - np.asarray(free.slice_motion(params, sl))).min() > 1e-3


def test_outlier_drift_weights_scale_the_penalty_by_the_outlier_score(phantom):
  """Weights are ``clip((r_s / median r)^p, 1, 1000)`` over slices with pixels; no gradient; p=0 is MetaSVR's."""
  stacks = fetal.simulate_stacks(phantom["volume"], phantom["affine"], seed=3, inplane=1.2, thickness=3.6,
                                 motion="uniform", max_rot_deg=3, max_trans_mm=1.5, noise=0.0,
                                 mask=phantom["mask"])
  sl = svr.prepare(stacks)
  counts = svr.pixel_counts(sl)
  sl = svr.device_slices(svr.pad_pixels(sl, len(sl["values"]) + 100))   # padding must not count as pixels
  n = len(sl["stack"])
  has = counts > 0
  assert (~has).sum() >= 2, "the test needs slices without pixels"
  model = svr.SVRModel(svr.volume_inr("grid", shape=(8, 8, 8)), svr.motion_model("free", n, 3),
                       outlier_drift_power=2.0)
  params = model.init(jax.random.PRNGKey(0), sl)
  # every slice with pixels at r = 0.05 except one at 3x that; empty slices at a huge score (ignored by the median)
  log_sigma = np.full(n, np.log(0.05), np.float32)
  out = int(np.flatnonzero(has)[3])
  log_sigma[out] = np.log(0.15)
  log_sigma[~has] = 5.0
  params["slice"] = {"log_sigma": jnp.asarray(log_sigma), "log_scale": jnp.zeros(n)}
  w = np.asarray(svr.outlier_drift_weights(params, sl, 2.0))
  expected = np.ones(n)
  expected[out] = 9.0
  expected[~has] = 1000.0
  np.testing.assert_allclose(w, expected, rtol=1e-4)
  # a below-median slice keeps weight 1 (the clip), and the weights carry no gradient to the slice group
  grad = jax.grad(lambda p: jnp.sum(svr.outlier_drift_weights(p, sl, 2.0)))(params)
  assert float(jnp.abs(grad["slice"]["log_sigma"]).max()) == 0.0
  # the loss: power 0 is the plain penalty; with power 2 only the outlier's (and empty slices') share grows
  motion = jax.random.normal(jax.random.PRNGKey(1), (n, 6)) * 0.05
  params["motion"] = {"params": {"motion": motion}}
  est = model.slice_motion(params, sl)
  per = np.asarray(jnp.mean(est[:, :3] ** 2, -1) + 1e-3 * jnp.mean(est[:, 3:] ** 2, -1))
  idx = jnp.arange(64)
  offsets = jnp.zeros((1, 3))
  plain = svr.SVRModel(model.volume, model.motion)
  _, aux0 = plain.loss(params, sl, idx, offsets)
  _, aux2 = model.loss(params, sl, idx, offsets)
  assert float(aux0["drift"]) == pytest.approx(per.mean(), rel=1e-5)
  assert float(aux2["drift"]) == pytest.approx((expected * per).mean(), rel=1e-5)
