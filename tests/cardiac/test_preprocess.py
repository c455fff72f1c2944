"""The official ViTa preprocessing: frame and slice selection, the heart crop, min-max, and the augmentation's
rotation and flip as exact pixel permutations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed.cardiac import preprocess


def test_keep_frames_50_to_25_and_slice_selection_follow_the_official_rules():
  idx = preprocess.keep_frames(50, 25)
  assert len(idx) == 25 and idx[0] == 0 and idx[-1] == 49 and (np.diff(idx) >= 2).all()
  np.testing.assert_array_equal(preprocess.keep_frames(10, 10), np.arange(10))
  seg = np.zeros((12, 3, 8, 8), np.int32)
  seg[3:10, 0, 2:5, 2:5] = 1                       # LV blood pool from slice 3 down to 9 at frame 0
  assert preprocess.select_sax_slices(seg, 6) == slice(5, 11)      # two below the first, six slices
  seg_apex = np.zeros_like(seg)
  seg_apex[8:, 0, 2:5, 2:5] = 1
  assert preprocess.select_sax_slices(seg_apex, 6) == slice(6, 12)  # moved up to fit at the end of the stack
  with pytest.raises(ValueError, match="label 1"):
    preprocess.select_sax_slices(np.zeros_like(seg), 6)


def test_heart_box_centres_on_the_labels_and_stays_inside():
  seg = np.zeros((2, 3, 40, 50), np.int32)
  seg[0, 1, 20:24, 30:34] = 2
  y0, x0, y1, x1 = preprocess.heart_box(seg, 16)
  assert (y1 - y0, x1 - x0) == (16, 16) and (y0, x0) == (13, 23)
  seg[:] = 0
  seg[0, 0, 0:2, 48:50] = 1                          # at a corner: the box is shifted inside the image
  assert preprocess.heart_box(seg, 16) == (0, 34, 16, 50)


def test_preprocess_subject_gives_the_official_layout_in_unit_range():
  from jaxmed.synth import heart
  rng = np.random.default_rng(0)
  subj = heart.draw_subject(rng)
  v = heart.render_views(subj["geometry"], rng, size=24, frames=20, num_sax=10)
  cine = preprocess.preprocess_subject(v["lax"] * 300 + 20, v["sax"] * 300 + 20, v["seg_sax"], num_sax=6,
                                       frames=10, size=16, seg_lax=v["seg_lax"])
  assert cine.shape == (9, 10, 16, 16)
  assert cine.min() == 0.0 and cine.max() == 1.0


def test_augment_rotation_by_90_degrees_is_rot90_and_flip_reverses_columns():
  img = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 3, 8, 8)), jnp.float32)
  rot = preprocess._rotate(img, jnp.pi / 2)
  np.testing.assert_allclose(np.asarray(rot), np.rot90(np.asarray(img), k=1, axes=(-1, -2)), atol=1e-5)
  out = preprocess.augment_batch(jax.random.PRNGKey(0), jnp.stack([img, img]))
  assert out.shape == (2, 2, 3, 8, 8) and np.isfinite(np.asarray(out)).all()
  # the same flip and rotation for every slice and frame: a constant cine stays constant inside the disc
  const = preprocess.augment(jax.random.PRNGKey(3), jnp.full((2, 3, 8, 8), 0.5))
  assert np.allclose(np.asarray(const)[..., 3:5, 3:5], np.asarray(const)[0, 0, 3, 3])
