"""Patchify round trip, the 5-D position embedding, and MAE random masking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed.cardiac.tokens import grid_shape, patchify, position_embedding_5d, random_masking, unpatchify


def test_patchify_round_trip_is_exact_and_orders_tokens_slice_t_h_w():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 10, 16, 24))
  p = patchify(x, (5, 8, 8))
  assert p.shape == (2, 9 * 2 * 2 * 3, 5 * 8 * 8)
  assert jnp.array_equal(unpatchify(p, (9, 10, 16, 24), (5, 8, 8)), x)
  # token 0 is slice 0, frames 0-4, rows 0-7, cols 0-7; the next token moves along w
  assert jnp.array_equal(p[0, 0], x[0, 0, :5, :8, :8].reshape(-1))
  assert jnp.array_equal(p[0, 1], x[0, 0, :5, :8, 8:16].reshape(-1))
  assert jnp.array_equal(p[0, 12], x[0, 1, :5, :8, :8].reshape(-1))   # 2*2*3 tokens per slice
  with pytest.raises(ValueError, match="divisible"):
    grid_shape((9, 12, 16, 24), (5, 8, 8))


def _official_embedding(num_lax, num_sax, grid, dim):
  """The official construction written out independently: per view, a meshgrid of (slice, t, h, w) positions;
  each axis gets (dim - 1) / 4 columns, sin(p w) then cos(p w) with w_i = 10000^(-i / (k / 2)); LAX rows
  first with view column 0, then SAX rows with 1."""
  k = (dim - 1) // 4

  def axis(pos):
    omega = 10000.0 ** -(np.arange(k // 2) / (k / 2))
    ang = np.outer(pos, omega)
    return np.concatenate([np.sin(ang), np.cos(ang)], 1)

  rows = []
  for flag, count in ((0.0, num_lax), (1.0, num_sax)):
    mesh = np.meshgrid(np.arange(count), *[np.arange(g) for g in grid], indexing="ij")
    cols = [axis(m.reshape(-1).astype(float)) for m in mesh]
    rows.append(np.concatenate([np.full((cols[0].shape[0], 1), flag)] + cols, 1))
  return np.concatenate(rows, 0)


@pytest.mark.parametrize("num_lax,num_sax,grid,dim", [(3, 6, (2, 2, 3), 65), (3, 6, (5, 16, 16), 1025),
                                                      (3, 2, (1, 2, 2), 33)])
def test_position_embedding_equals_the_official_construction(num_lax, num_sax, grid, dim):
  pe = position_embedding_5d(num_lax, num_sax, grid, dim)
  ref = _official_embedding(num_lax, num_sax, grid, dim)
  np.testing.assert_allclose(pe, ref, atol=2e-6)
  per_slice = int(np.prod(grid))
  view = pe[:, 0].reshape(num_lax + num_sax, per_slice)
  assert (view[:num_lax] == 0).all() and (view[num_lax:] == 1).all()     # LAX = 0, SAX = 1
  assert len(np.unique(np.round(pe, 6), axis=0)) == len(pe)


def test_position_embedding_pads_a_width_that_is_not_1_plus_8m():
  pe = position_embedding_5d(3, 6, (2, 2, 3), 65)
  # long-axis view 0 and short-axis slice 0 share the slice index: only the view flag tells them apart
  assert np.allclose(pe[0, 1:], pe[3 * 12, 1:]) and pe[0, 0] != pe[3 * 12, 0]
  padded = position_embedding_5d(3, 6, (2, 2, 3), 70)   # 70 = 1 + 4 * 16 + 5 zero columns
  assert np.allclose(padded[:, :65], pe) and np.allclose(padded[:, 65:], 0.0)


@pytest.mark.parametrize("length,ratio", [(108, 0.7), (10, 0.75), (7, 0.5)])
def test_masking_keeps_floor_and_ids_restore_inverts_the_shuffle(length, ratio):
  x = jax.random.normal(jax.random.PRNGKey(1), (3, length, 4))
  kept, mask, ids_restore = random_masking(jax.random.PRNGKey(2), x, ratio)
  k = int(np.floor(length * (1 - ratio)))
  assert kept.shape == (3, k, 4)
  assert (mask.sum(1) == length - k).all()
  # put the kept tokens back with the masked ones after them: ids_restore restores the original order
  ids_shuffle = jnp.argsort(ids_restore, axis=1)
  shuffled = jnp.take_along_axis(x, ids_shuffle[:, :, None], axis=1)
  assert jnp.array_equal(shuffled[:, :k], kept)
  assert jnp.array_equal(jnp.take_along_axis(shuffled, ids_restore[:, :, None], axis=1), x)
  # a kept token is unmasked at its original position
  for b in range(3):
    pos = np.asarray(ids_shuffle[b, :k])
    assert (np.asarray(mask[b])[pos] == 0).all()
