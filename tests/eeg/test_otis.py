"""OTiS: joint attention over variates and time, the MAE path, the masked loss, and pretraining that learns."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import eeg
from jaxmed.synth.timeseries import generic_series


def test_tokens_attend_across_variates_and_the_mae_path_matches_the_full_one():
  enc = eeg.OTiSEncoder(patch=24, dim=16, depth=1, heads=2, num_variates=4)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 240)), jnp.float32)
  v = enc.init(jax.random.PRNGKey(0), x)
  t = enc.apply(v, x)
  assert t.shape == (2, 3, 10, 16) and enc.apply(v, x, features=True).shape == (2, 16)
  bump = x.at[:, 1, 100:124].add(3.0)                          # one patch of channel 1
  t2 = enc.apply(v, bump)
  assert np.abs(np.asarray(t2[:, 0] - t[:, 0])).max() > 1e-3    # joint attention: channel 0 sees channel 1
  everything = jnp.broadcast_to(jnp.arange(30), (2, 30))
  full = enc.apply(v, x, keep=everything)
  np.testing.assert_allclose(np.asarray(full[:, 1:]).reshape(2, 3, 10, 16), np.asarray(t), atol=1e-5)
  shuffled = jnp.broadcast_to(jnp.arange(30)[::-1], (2, 30))    # token order does not matter (no causal mask)
  rev = enc.apply(v, x, keep=shuffled)
  np.testing.assert_allclose(np.asarray(rev[:, 1:][:, ::-1]), np.asarray(full[:, 1:]), atol=1e-5)
  assert eeg.channel_features(t).shape == (2, 3 * 16)


def test_temporal_embedding_is_half_width_with_a_zero_class_row():
  from jaxmed.eeg.otis import temporal_embedding
  pe = temporal_embedding(5, 16)
  assert pe.shape == (6, 8) and np.all(pe[0] == 0)
  np.testing.assert_allclose(pe[1], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)       # position 0: sin 0, cos 0


def test_mask_count_and_masked_loss_ignores_visible_patches():
  mask = eeg.random_patch_mask(jax.random.PRNGKey(1), (4, 3, 10), 0.4)
  assert np.all(np.asarray(mask).sum((1, 2)) == 12) and np.asarray(mask).sum(-1).std() > 0   # joint over C x P
  pred, target = jnp.zeros((4, 3, 10, 24)), jnp.ones((4, 3, 10, 24))
  base = eeg.masked_reconstruction_loss(pred, target, mask)
  assert float(base) == 1.0
  moved = jnp.where(mask[..., None], pred, 100.0)                # change only visible patches
  assert float(eeg.masked_reconstruction_loss(moved, target, mask)) == 1.0


def test_pretraining_beats_predicting_zero():
  x = jnp.asarray(generic_series(64, 240, seed=3).reshape(16, 4, 240))
  model = eeg.OTiSPretrainer(eeg.OTiSEncoder(patch=24, dim=32, depth=1, heads=2, num_variates=4), mask_ratio=0.3)
  params = model.init(jax.random.PRNGKey(0), x, eeg.random_patch_mask(jax.random.PRNGKey(0), (16, 4, 10), 0.3))
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  def loss(p, k):
    mask = eeg.random_patch_mask(k, (16, 4, 10), 0.3)
    pred, target = model.apply(p, x, mask)
    return eeg.masked_reconstruction_loss(pred, target, mask)

  @jax.jit
  def step(p, o, k):
    l, g = jax.value_and_grad(loss)(p, k)
    u, o = tx.update(g, o)
    return optax.apply_updates(p, u), o, l

  for i in range(150):
    params, opt, l = step(params, opt, jax.random.PRNGKey(i))
  mask = eeg.random_patch_mask(jax.random.PRNGKey(999), (16, 4, 10), 0.3)
  _, target = model.apply(params, x, mask)
  zero = float(eeg.masked_reconstruction_loss(jnp.zeros_like(target), target, mask))   # the normalised mean
  assert float(loss(params, jax.random.PRNGKey(999))) < 0.9 * zero          # measured ~0.81
