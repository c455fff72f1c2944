"""OTiS robust normalisation (clamp, outlier-free statistics) and the patch counts per context length."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import eeg


def test_robust_normalise_clamps_and_ignores_outliers():
  rng = np.random.default_rng(0)
  x = rng.normal(5.0, 2.0, (3, 2000)).astype(np.float32)
  x[:, ::100] = 500.0                                    # 1% huge artefacts
  z = np.asarray(eeg.robust_normalise(jnp.asarray(x)))
  assert z.min() >= -3.0 and z.max() <= 3.0
  inliers = z[:, np.arange(2000) % 100 != 0]
  assert abs(inliers.mean()) < 0.1 and inliers.std() == pytest.approx(1.0, abs=0.08)
  plain = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)   # the artefacts set a plain z-score's scale
  assert plain[:, np.arange(2000) % 100 != 0].std() < 0.3
  assert np.all(z[:, ::100] == 3.0)


def test_robust_normalise_is_affine_invariant():
  x = np.random.default_rng(1).standard_normal((2, 4, 500)).astype(np.float32)
  a = np.asarray(eeg.robust_normalise(jnp.asarray(x)))
  b = np.asarray(eeg.robust_normalise(jnp.asarray(40.0 * x - 7.0)))
  np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("seconds,patches_24,patches_32", [(2, 8, 6), (5, 20, 15), (10, 41, 31), (20, 83, 62)])
def test_patch_counts_per_context(seconds, patches_24, patches_32):
  x = jnp.zeros((2, 19, int(seconds * 100)))
  assert eeg.patchify(x, 24).shape == (2, 19, patches_24, 24)
  assert eeg.patchify(x, 32).shape == (2, 19, patches_32, 32)
  p = eeg.patchify(jnp.arange(100.0), 24)
  np.testing.assert_array_equal(np.asarray(p[1]), np.arange(24, 48))
  with pytest.raises(ValueError, match="shorter than one patch"):
    eeg.patchify(jnp.zeros(10), 24)
