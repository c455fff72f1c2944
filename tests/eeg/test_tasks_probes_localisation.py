"""Task metrics against closed forms, linear probes, and IG localisation on a model with a known answer."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import eeg


def test_metrics_closed_forms():
  m = eeg.task_metrics("age", np.array([20.0, 40.0, 60.0]), np.array([30.0, 40.0, 50.0]))
  assert m["mae"] == pytest.approx(20 / 3) and m["pearson_r"] == pytest.approx(1.0)
  probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
  s = eeg.task_metrics("seizure", np.array([0, 1, 1, 1]), probs)
  assert s["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2) and s["auroc"] == 1.0 and s["auprc"] == 1.0
  y = np.array([0, 1, 2, 3, 4, 5])
  e = eeg.task_metrics("events", y, np.eye(6))
  assert e["balanced_accuracy"] == 1.0 and e["kappa"] == 1.0 and e["weighted_f1"] == 1.0
  chance = eeg.chance_metrics("events", y, y)
  assert chance["balanced_accuracy"] == pytest.approx(1 / 6) and chance["kappa"] == 0.0
  assert eeg.beats_chance("events", e, chance) and not eeg.beats_chance("events", chance, chance)


def test_class_weights_balance_the_loss():
  y = np.array([0, 0, 0, 1])
  w = eeg.class_weights(y, 2)
  assert w[0] * 3 == pytest.approx(w[1] * 1)
  logits = jnp.zeros((4, 2))
  assert float(eeg.task_loss("seizure", logits, jnp.asarray(y), jnp.asarray(w))) == pytest.approx(np.log(2))


def test_linear_probe_separates_and_regresses():
  rng = np.random.default_rng(0)
  f = rng.standard_normal((200, 10))
  y = (f[:, 3] > 0).astype(int)
  probs = eeg.linear_probe("seizure", f[:100], y[:100], f[100:])
  assert probs.shape == (100, 2) and eeg.task_metrics("seizure", y[100:], probs)["auroc"] > 0.95
  age = 50 + 10 * f[:, 0]
  pred = eeg.linear_probe("age", f[:100], age[:100], f[100:])
  assert eeg.task_metrics("age", age[100:], pred)["mae"] < 0.5


def test_integrated_gradients_find_the_weighted_channels():
  w = np.zeros((6, 50), np.float32)
  w[[1, 4]] = 1.0                                    # the "seizure" lives on channels 1 and 4
  f = lambda x: jnp.sum(jnp.asarray(w) * x ** 2)     # noqa: E731
  x = jnp.asarray(np.random.default_rng(1).standard_normal((6, 50)), jnp.float32)
  rel, ig = eeg.channel_relevance(f, x, steps=8)
  assert float(ig.sum()) == pytest.approx(float(f(x)), rel=1e-4)       # completeness, zero baseline
  assert set(np.argsort(-np.asarray(rel))[:2]) == {1, 4}
  assert eeg.top_k_hit(np.asarray(rel)[None], [np.array([1, 4])]) == 1.0
  assert eeg.top_k_hit(np.array([[0.9, 0.1, 0.8, 0.0]]), [np.array([0, 1])]) == 0.5


def test_bipolar_channels_map_to_electrodes():
  names = ("Fp1-F7", "F7-T7", "Fp2-F8")
  assert list(eeg.injected_channels(("T7",), names)) == [1]
  assert list(eeg.injected_channels(("F7", "Fp2"), names)) == [0, 1, 2]
  rel = eeg.electrode_relevance(np.array([1.0, 2.0, 0.0]), names, ("Fp1", "F7", "T7", "Fp2", "F8"))
  np.testing.assert_allclose(rel, [0.5, 1.5, 1.0, 0.0, 0.0])


def test_background_baselines_and_occlusion():
  rng = np.random.default_rng(2)
  background = jnp.asarray(rng.standard_normal((3, 5, 40)), jnp.float32)
  x = background[0].at[2].add(3.0 * jnp.sin(jnp.arange(40.0)))           # evidence added on channel 2 only
  f = lambda z: jnp.sum(jnp.sin(jnp.arange(40.0)) * z[2]) + 0.1 * jnp.sum(z[0] ** 2)  # noqa: E731
  rel, ig = eeg.channel_relevance(f, x, background, steps=8)
  assert int(np.argmax(np.asarray(rel))) == 2 and ig.shape == (5, 40)
  occ = np.asarray(eeg.occlusion_relevance(f, x, background[0]))
  assert occ[2] == pytest.approx(3.0 * float(jnp.sum(jnp.sin(jnp.arange(40.0)) ** 2)), rel=1e-4)
  np.testing.assert_allclose(occ[[1, 3, 4]], 0.0, atol=1e-4)              # f ignores them; channel 0 unchanged
