"""ViTa tokenisation: (views x slices, T, H, W) cine into spatio-temporal patches, the 5-D position embedding
and MAE random masking.

A subject's cine is one array ``[S, T, H, W]``: the ``S_lax`` long-axis views
first, then the ``S_sax`` short-axis slices (the official layout). Every
slice is cut into ``(t, h, w)`` patches (ViTa: ``(5, 8, 8)``); tokens are
ordered slice, then t, then h, then w.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn.vit import sincos_1d


def grid_shape(shape: tuple[int, int, int, int], patch: tuple[int, int, int]) -> tuple[int, int, int, int]:
  """``(S, T, H, W)`` and ``(t, h, w)`` -> the token grid ``(S, T/t, H/h, W/w)``; sizes must divide."""
  s, t, h, w = shape
  if t % patch[0] or h % patch[1] or w % patch[2]:
    raise ValueError(f"grid_shape: (T, H, W) = {(t, h, w)} is not divisible by the patch {tuple(patch)}")
  return s, t // patch[0], h // patch[1], w // patch[2]


def patchify(x: jax.Array, patch: tuple[int, int, int]) -> jax.Array:
  """``[B, S, T, H, W] -> [B, L, t*h*w]`` with ``L = S (T/t)(H/h)(W/w)``."""
  b, s, t, h, w = x.shape
  pt, ph, pw = patch
  _, gt, gh, gw = grid_shape((s, t, h, w), patch)
  x = x.reshape(b, s, gt, pt, gh, ph, gw, pw)
  x = x.transpose(0, 1, 2, 4, 6, 3, 5, 7)
  return x.reshape(b, s * gt * gh * gw, pt * ph * pw)


def unpatchify(p: jax.Array, shape: tuple[int, int, int, int], patch: tuple[int, int, int]) -> jax.Array:
  """The inverse of :func:`patchify`: ``[B, L, t*h*w] -> [B, S, T, H, W]`` for ``shape = (S, T, H, W)``."""
  s, gt, gh, gw = grid_shape(shape, patch)
  pt, ph, pw = patch
  x = p.reshape(p.shape[0], s, gt, gh, gw, pt, ph, pw)
  x = x.transpose(0, 1, 2, 5, 3, 6, 4, 7)
  return x.reshape(p.shape[0], s, gt * pt, gh * ph, gw * pw)


def position_embedding_5d(num_lax: int, num_sax: int, grid: tuple[int, int, int], dim: int) -> np.ndarray:
  """The fixed "5-D" embedding ``[L, dim]``: view flag, slice index, t, h, w.

  Column 0 is the view flag, 0 for a long-axis view and 1 for a short-axis
  slice (the official polarity: ``utils/imaging_model_related.py``,
  ``sincos_pos_embed``, line 48 of Yundi-Zhang/ViTa); then four sin-cos
  blocks of ``k`` columns each for the slice index within its view, t, h and
  w, so ``dim = 1 + 4k`` (``k`` even; the official code asserts
  ``(dim - 1) % 8 == 0``, e.g. 1025). Columns past ``1 + 4k`` (when
  ``dim - 1`` is not a multiple of 8) are zero. Rows follow
  :func:`patchify`'s token order. The official CLS row is zero, which is
  why the encoders add nothing to their CLS token.
  """
  k = (dim - 1) // 4 // 2 * 2
  if k < 2:
    raise ValueError(f"position_embedding_5d: dim {dim} too small (need 1 + 4k with k >= 2)")
  gt, gh, gw = grid
  view = np.concatenate([np.zeros(num_lax), np.ones(num_sax)])
  index = np.concatenate([np.arange(num_lax), np.arange(num_sax)])
  s_, t_, h_, w_ = np.meshgrid(np.arange(num_lax + num_sax), np.arange(gt), np.arange(gh), np.arange(gw),
                               indexing="ij")
  s_, t_, h_, w_ = (a.reshape(-1) for a in (s_, t_, h_, w_))
  out = np.zeros((len(s_), dim), np.float32)
  out[:, 0] = view[s_]
  for j, pos in enumerate((index[s_], t_, h_, w_)):
    out[:, 1 + j * k:1 + (j + 1) * k] = sincos_1d(pos, k)
  return out


def random_masking(key: jax.Array, x: jax.Array, ratio: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """MAE per-sample random masking of tokens ``x [B, L, D]``.

  Keeps ``K = floor(L (1 - ratio))`` tokens chosen by argsort of uniform
  noise. Returns ``(kept [B, K, D], mask [B, L] (1 = masked), ids_restore
  [B, L])``; ``take_along_axis(concat(kept, masked), ids_restore)`` puts
  every token back in place.
  """
  b, length, _ = x.shape
  keep = int(np.floor(length * (1.0 - ratio)))
  noise = jax.random.uniform(key, (b, length))
  ids_shuffle = jnp.argsort(noise, axis=1)
  ids_restore = jnp.argsort(ids_shuffle, axis=1)
  kept = jnp.take_along_axis(x, ids_shuffle[:, :keep, None], axis=1)
  mask = jnp.ones((b, length), x.dtype).at[:, :keep].set(0.0)
  return kept, jnp.take_along_axis(mask, ids_restore, axis=1), ids_restore
