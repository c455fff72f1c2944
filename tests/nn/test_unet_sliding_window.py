"""UNet3D shapes and deep supervision; sliding-window inference reproduces a whole-volume prediction."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn import UNet3D, gaussian_importance, sliding_window_inference, window_starts


def test_unet3d_shapes_and_deep_supervision():
  x = jnp.ones((2, 16, 16, 8, 1))
  model = UNet3D(num_classes=3, widths=(4, 8, 16))
  params = model.init(jax.random.PRNGKey(0), x)
  assert model.apply(params, x).shape == (2, 16, 16, 8, 3)
  ds = UNet3D(num_classes=3, widths=(4, 8, 16), deep_supervision=True)
  logits, aux = ds.apply(ds.init(jax.random.PRNGKey(0), x), x)
  assert logits.shape == (2, 16, 16, 8, 3)
  assert [a.shape for a in aux] == [(2, 4, 4, 2, 3), (2, 8, 8, 4, 3)]


def test_window_starts_cover_the_volume():
  for size, patch in ((50, 16), (16, 16), (17, 16), (100, 32)):
    starts = window_starts(size, patch, 0.5)
    assert starts[0] == 0 and starts[-1] == size - patch
    assert max(np.diff(starts), default=0) <= patch // 2
  assert window_starts(10, 16, 0.5) == [0]


def test_gaussian_weight_peaks_at_the_centre_and_is_positive():
  w = gaussian_importance((9, 9, 9))
  assert w[4, 4, 4] == 1.0 and w.min() > 0 and np.allclose(w, w[::-1, ::-1, ::-1])


def test_sliding_window_of_a_pointwise_model_equals_the_whole_volume_prediction():
  """A voxel-wise function gives the same value in every patch, so the weighted mean is exact."""
  rng = np.random.default_rng(0)
  vol = rng.normal(size=(21, 18, 11, 2)).astype(np.float32)
  f = jax.jit(lambda x: jnp.stack([jnp.tanh(x[..., 0]), x[..., 0] * x[..., 1], jnp.ones_like(x[..., 0])], -1))
  out = sliding_window_inference(f, vol, (8, 8, 8), overlap=0.5, batch_size=3)
  assert out.shape == (21, 18, 11, 3)
  assert np.allclose(out, np.asarray(f(vol)), atol=1e-5)
  small = sliding_window_inference(f, vol[:5], (8, 8, 8))      # smaller than a patch: padded, then cropped
  assert np.allclose(small, np.asarray(f(vol[:5])), atol=1e-5)
