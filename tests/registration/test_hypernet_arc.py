"""Hypernetwork structure, lambda sampling, ARC vmap-vs-loop parity and the AUC's closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import registration as R
from jaxmed.synth import NUM_LABELS, atlas_subjects


@pytest.fixture(scope="module")
def tiny_model():
  net = R.registration_net("vxm", "svf", ndim=2, encoder=(4, 4), decoder=(4, 4), final=(4,), int_steps=4)
  hm = R.make_hypermorph(net, (1, 16, 16, 1), hidden=(16, 16), head_scale=1.0)
  hp = jax.jit(hm.init)(jax.random.PRNGKey(0))  # head_scale=1: generated weights vary with lambda
  return net, hm, hp


def test_generated_params_match_network_structure(tiny_model):
  net, hm, hp = tiny_model
  x = jnp.zeros((1, 16, 16, 1))
  template = net.init(jax.random.PRNGKey(1), x, x)
  gen = hm.generate(hp, 0.3)
  assert jax.tree.structure(gen) == jax.tree.structure(template)
  assert [a.shape for a in jax.tree.leaves(gen)] == [a.shape for a in jax.tree.leaves(template)]
  a, b = jax.tree.leaves(hm.generate(hp, 0.0)), jax.tree.leaves(hm.generate(hp, 1.0))
  assert any(float(jnp.max(jnp.abs(u - v))) > 0 for u, v in zip(a, b))
  head_labels = jax.tree.leaves(R.head_kernel_labels(hp))
  assert head_labels.count("head_kernel") == len(jax.tree.leaves(template))
  disp, field = hm.apply(hp, 0.5, x, x)
  assert disp.shape == field.shape == (1, 16, 16, 2)


def test_sample_lambdas_endpoint_fraction():
  lam = np.asarray(R.sample_lambdas(jax.random.PRNGKey(0), 20_000, endpoint_prob=0.2))
  assert lam.min() >= 0 and lam.max() <= 1
  at_ends = np.mean((lam == 0) | (lam == 1))
  assert at_ends == pytest.approx(0.2, abs=0.015)
  assert np.mean(lam == 1) == pytest.approx(0.1, abs=0.01)


def test_loss_weights():
  a, b = R.loss_weights(jnp.float32(0.25))
  assert (float(a), float(b)) == (0.75, 0.25)
  a, b = R.loss_weights(jnp.asarray([0.0, 1.0]), "log_weight")
  np.testing.assert_allclose(b, [1e-3, 1e1], rtol=1e-5)
  with pytest.raises(ValueError, match="weighting"):
    R.loss_weights(0.1, "linear")


def test_vmapped_arc_equals_loop_over_lambda(tiny_model):
  _, hm, hp = tiny_model
  d = atlas_subjects(4, (16, 16), seed=0)
  m, f = jnp.asarray(d["images"][:2, ..., None]), jnp.asarray(d["images"][2:, ..., None])
  ml, fl = jnp.asarray(d["labels"][:2]), jnp.asarray(d["labels"][2:])

  def register(lam, mm, ff):
    # Scale the field with lambda so every lambda gives a distinct, non-trivial warp.
    return 20.0 * (1.0 - lam) * hm.apply(hp, lam, mm, ff)[0] + 2.0 * jnp.sin(lam * 3.0)

  lams = np.array([0.0, 0.3, 0.7, 1.0], np.float32)
  kw = dict(labels=tuple(range(1, NUM_LABELS)), num_labels=NUM_LABELS)
  vm = jax.jit(lambda l: R.arc_points(register, l, m, f, ml, fl, **kw))(lams)
  for i, lam in enumerate(lams):
    one = R.arc_points(register, lams[i:i + 1], m, f, ml, fl, **kw)
    for key in ("dice", "folding_percent", "sdlogj_l2r", "sdlogj"):
      np.testing.assert_allclose(vm[key][i], one[key][0], rtol=1e-5, atol=1e-5, err_msg=f"{key} at {lam}")
    np.testing.assert_array_equal(vm["warped_labels"][i], one["warped_labels"][0])
  chunked = jax.jit(lambda l: R.arc_points(register, l, m, f, ml, fl, lambda_batch_size=2, **kw))(lams)
  pairwise = jax.jit(lambda l: R.arc_points(register, l, m, f, ml, fl, lambda_batch_size=2, pair_batch_size=1,
                                            **kw))(lams)
  for key in ("dice", "folding_percent", "sdlogj_l2r", "sdlogj", "ndv_percent"):
    np.testing.assert_allclose(chunked[key], vm[key], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pairwise[key], vm[key], rtol=1e-5, atol=1e-5)
  curve = R.arc_curve(register, lams, m, f, ml, fl, **kw)
  assert set(curve) >= {"lambda", "dice", "hd95", "sdlogj_l2r", "sdlogj", "folding_percent", "ndv_percent", "auc"}
  # These exaggerated warps can erase a small label: HD95 is then inf (Learn2Reg), never NaN.
  assert curve["dice"].shape == (4,) and not np.any(np.isnan(curve["hd95"]))


def test_arc_auc_closed_forms():
  # One perfectly regular point: the AUC is its alignment.
  assert R.arc_auc([0.0], [0.8]) == pytest.approx(0.8)
  # A linear envelope between two points: the mean of its ends.
  assert R.arc_auc([0.2, 0.6], [0.5, 0.9]) == pytest.approx(0.7)
  # A dominated point (less regular and worse) does not lower the envelope.
  assert R.arc_auc([0.2, 0.6, 0.8], [0.5, 0.9, 0.7], r_range=(0.2, 0.8)) == pytest.approx((0.7 * 0.4 + 0.9 * 0.2) / 0.6)
  # Better alignment at every regularity gives a larger area.
  assert R.arc_auc([0.1, 0.5], [0.6, 0.9]) > R.arc_auc([0.1, 0.5], [0.5, 0.8])


def test_arc_auc_on_analytic_curves_over_their_common_range():
  # Two saturating curves a(r) = c (1 - exp(-r / s)), sampled densely on different ranges.
  r1, r2 = np.linspace(0.01, 0.30, 400), np.linspace(0.05, 0.50, 400)
  a1, a2 = 0.8 * (1 - np.exp(-r1 / 0.05)), 0.9 * (1 - np.exp(-r2 / 0.1))
  lo, hi = R.arc_common_range([r1, r2])
  assert (lo, hi) == (pytest.approx(0.05), pytest.approx(0.30))

  def exact(c, s):  # (1 / (hi - lo)) * integral_lo^hi c (1 - exp(-r / s)) dr
    return c * (1 - s * (np.exp(-lo / s) - np.exp(-hi / s)) / (hi - lo))

  assert R.arc_auc(r1, a1, r_range=(lo, hi)) == pytest.approx(exact(0.8, 0.05), abs=1e-5)
  assert R.arc_auc(r2, a2, r_range=(lo, hi)) == pytest.approx(exact(0.9, 0.1), abs=1e-5)
  # Shuffled points and a noisy dominated point below the curve give the same area.
  perm = np.random.default_rng(0).permutation(r1.size)
  assert R.arc_auc(np.append(r1[perm], 0.2), np.append(a1[perm], 0.1), r_range=(lo, hi)) == pytest.approx(
      R.arc_auc(r1, a1, r_range=(lo, hi)))
  with pytest.raises(ValueError, match="smoothest point"):
    R.arc_auc(r2, a2, r_range=(0.0, 0.3))
  with pytest.raises(ValueError, match="share no regularity range"):
    R.arc_common_range([[0.0, 0.1], [0.2, 0.3]])


def test_lambda_batch_for_budget_from_compiled_memory(tiny_model):
  _, hm, hp = tiny_model
  d = atlas_subjects(4, (16, 16), seed=0)
  m, f = jnp.asarray(d["images"][:2, ..., None]), jnp.asarray(d["images"][2:, ..., None])
  ml, fl = jnp.asarray(d["labels"][:2]), jnp.asarray(d["labels"][2:])
  points = lambda lam: R.arc_points(lambda l, a, b: hm.apply(hp, l, a, b)[0], lam, m, f, ml, fl,  # noqa: E731
                                    labels=tuple(range(1, NUM_LABELS)), num_labels=NUM_LABELS)
  assert R.lambda_batch_for_budget(points, 8, budget_gb=1e-9) == 1  # nothing fits: one lambda at a time
  assert R.lambda_batch_for_budget(points, 8, budget_gb=100.0) == 8  # everything fits: all at once
  one = R.compiled_peak_bytes(jax.jit(points).lower(jax.ShapeDtypeStruct((1,), jnp.float32)).compile())
  four = R.compiled_peak_bytes(jax.jit(points).lower(jax.ShapeDtypeStruct((4,), jnp.float32)).compile())
  assert four > one > 0
  k = R.lambda_batch_for_budget(points, 8, budget_gb=(one + four) / 2 / 2 ** 30)
  assert 1 <= k < 4
