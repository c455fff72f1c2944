"""EEGNet (max-norm, batch statistics) and BIOT (STFT tokens, amplitude scaling)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import eeg


def test_max_norm_bounds_each_unit():
  w = jnp.asarray(np.random.default_rng(0).standard_normal((30, 5)) * 3, jnp.float32)
  out = np.asarray(eeg.max_norm(w, 0.25, (0,)))
  assert np.all(np.linalg.norm(out, axis=0) <= 0.25 + 1e-6)
  small = w * 1e-3                                             # inside the ball: unchanged
  np.testing.assert_allclose(np.asarray(eeg.max_norm(small, 0.25, (0,))), np.asarray(small), rtol=1e-6)


def test_eegnet_shapes_and_precise_batch_stats():
  x = np.random.default_rng(1).standard_normal((16, 19, 400)).astype(np.float32) * 20
  model = eeg.EEGNet(3, kernel_length=50)
  v = model.init(jax.random.PRNGKey(0), x[:2])
  assert model.apply(v, x).shape == (16, 3)
  # (400 / 4) / 8 = 12 time steps x F2 = 16 features into the dense layer
  assert v["params"]["dense_kernel"].shape == (12 * 16, 3)
  v2 = eeg.precise_batch_stats(model, v, x, batch_size=16)      # one batch = the whole set
  train_mode = model.clone(dropout=0.0).apply(v2, x, train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(np.asarray(model.apply(v2, x)), np.asarray(train_mode), rtol=1e-3, atol=1e-3)


def test_stft_magnitude_peaks_at_the_tone():
  t = np.arange(1000) / 100.0
  x = jnp.asarray(np.sin(2 * np.pi * 12.0 * t), jnp.float32)
  spec = np.asarray(eeg.stft_magnitude(x, 100, 50))
  assert spec.shape == (19, 51) and np.all(spec.argmax(-1) == 12)   # 1 Hz bins at n_fft = 100, 100 Hz
  with pytest.raises(ValueError, match="fewer than one"):
    eeg.stft_magnitude(x[:50], 100, 50)


def test_biot_is_invariant_to_channel_gain():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 19, 500)), jnp.float32)
  model = eeg.BIOT(6, n_fft=100, hop=50, dim=16, depth=1, heads=2, num_channels=19)
  v = model.init(jax.random.PRNGKey(0), x)
  gains = jnp.asarray(np.linspace(0.5, 50, 19), jnp.float32)[None, :, None]
  np.testing.assert_allclose(np.asarray(model.apply(v, x * gains)), np.asarray(model.apply(v, x)), atol=1e-4)
  assert model.apply(v, x, features=True).shape == (2, 16)
