"""ViTa's cine preprocessing and augmentation, as the official data pipeline does it (Yundi-Zhang/ViTa).

Arrays are ours: ``[S, T, H, W]`` per view stack (the official files are
``[H, W, S, T]``).

* :func:`heart_box` - the fixed-size box centred on the heart's labels over
  all slices and frames (``datasets/preprocessing_imaging/process_images.py``
  ``get_2D_slice_bbox_with_fixed_size``, lines 27-41; 128 x 128 there);
* :func:`select_sax_slices` - ``num`` consecutive SAX slices starting two
  below the first with LV blood pool at frame 0, moved up at the apex
  (``datasets/datasets.py`` lines 161-166);
* :func:`keep_frames` - ``K`` of ``T`` frames at ``round(i (T - 1) / (K - 1))``
  (lines 89-92; 50 -> 25 for the MAE);
* :func:`minmax` - the whole subject scaled to [0, 1] (``utils/general.py``
  ``image_normalization``, applied at ``datasets.py`` line 86);
* :func:`augment` - random horizontal flip (p 0.5), rotation U(-180, 180)
  degrees and autocontrast (p 0.5, each image to its own [min, max])
  (``datasets.py`` ``apply_augmentations``, lines 184-195), in JAX so it runs
  inside a jitted step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def heart_box(seg: np.ndarray, size: int) -> tuple[int, int, int, int]:
  """``(y0, x0, y1, x1)`` of a ``size`` x ``size`` box centred on the labels of ``seg [..., H, W]``, shifted to
  stay inside the image; an image smaller than ``size`` raises."""
  h, w = seg.shape[-2:]
  if h < size or w < size:
    raise ValueError(f"heart_box: image {h}x{w} is smaller than the {size}x{size} crop")
  fg = np.argwhere(np.asarray(seg).reshape(-1, h, w).max(0) > 0)
  if not len(fg):
    raise ValueError("heart_box: the segmentation has no foreground to centre the crop on")
  centre = (fg.min(0) + fg.max(0)) // 2
  lo = np.minimum(np.maximum(centre - size // 2, 0), np.array([h, w]) - size)
  return int(lo[0]), int(lo[1]), int(lo[0]) + size, int(lo[1]) + size


def select_sax_slices(seg_sax: np.ndarray, num: int, *, lv_label: int = 1, offset: int = 2) -> slice:
  """The slices ``[z0, z0 + num)`` of a SAX stack ``seg_sax [S, T, H, W]``: ``z0`` is ``offset`` below the
  first slice with ``lv_label`` at frame 0, moved up so that ``num`` slices fit."""
  s = seg_sax.shape[0]
  if s < num:
    raise ValueError(f"select_sax_slices: the stack has {s} slices, {num} requested")
  has_lv = (seg_sax[:, 0] == lv_label).reshape(s, -1).any(1)
  if not has_lv.any():
    raise ValueError(f"select_sax_slices: no slice has label {lv_label} (LV blood pool) at frame 0")
  z_max = min(int(np.argmax(has_lv)) + offset + num, s)
  return slice(z_max - num, z_max)


def keep_frames(num_frames: int, keep: int) -> np.ndarray:
  """Frame indices ``round(i (T - 1) / (K - 1))``, ``i < K`` (all frames when ``K >= T``)."""
  if keep >= num_frames:
    return np.arange(num_frames)
  step = (num_frames - 1) / (keep - 1)
  return np.array([round(i * step) for i in range(keep)])


def minmax(x: np.ndarray) -> np.ndarray:
  """``(x - min) / (max - min)`` over the whole array (a constant array becomes zeros)."""
  x = np.asarray(x, np.float32)
  lo, hi = float(x.min()), float(x.max())
  return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def preprocess_subject(lax: np.ndarray, sax: np.ndarray, seg_sax: np.ndarray, *, num_sax: int = 6,
                       frames: int = 25, size: int | None = None, seg_lax: np.ndarray | None = None) -> np.ndarray:
  """``lax [3, T, H, W]``, ``sax [S, T, H, W]`` (+ SAX labels) -> ``cine [3 + num_sax, K, size, size]`` in [0, 1]:
  slice selection, the crop around the heart (``size``; none when ``None``), frame selection, min-max."""
  z = select_sax_slices(seg_sax, num_sax)
  sax, seg = sax[z], seg_sax[z]
  if size is not None:
    y0, x0, y1, x1 = heart_box(seg, size)
    sax = sax[..., y0:y1, x0:x1]
    if seg_lax is not None:
      ly0, lx0, ly1, lx1 = heart_box(seg_lax, size)
      lax = lax[..., ly0:ly1, lx0:lx1]
    else:
      lax = lax[..., y0:y1, x0:x1]
  cine = np.concatenate([lax, sax])
  return minmax(cine[:, keep_frames(cine.shape[1], frames)])


def _rotate(img: jax.Array, angle: jax.Array) -> jax.Array:
  """Bilinear rotation of ``img [..., H, W]`` about its centre by ``angle`` radians (zeros outside)."""
  h, w = img.shape[-2:]
  yy, xx = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing="ij")
  c, s = jnp.cos(angle), jnp.sin(angle)
  src = jnp.stack([c * yy - s * xx + (h - 1) / 2, s * yy + c * xx + (w - 1) / 2])
  flat = img.reshape(-1, h, w)
  out = jax.vmap(lambda im: jax.scipy.ndimage.map_coordinates(im, list(src), order=1, mode="constant"))(flat)
  return out.reshape(img.shape)


def augment(key: jax.Array, cine: jax.Array) -> jax.Array:
  """One subject ``cine [S, T, H, W]``: the same flip and rotation for every slice and frame, then (p 0.5)
  every image stretched to its own [0, 1]."""
  k_flip, k_rot, k_con = jax.random.split(key, 3)
  x = jnp.where(jax.random.uniform(k_flip) < 0.5, cine[..., ::-1], cine)
  x = _rotate(x, jax.random.uniform(k_rot, minval=-jnp.pi, maxval=jnp.pi))
  lo, hi = x.min((-2, -1), keepdims=True), x.max((-2, -1), keepdims=True)
  stretched = jnp.where(hi > lo, (x - lo) / jnp.where(hi > lo, hi - lo, 1.0), x)
  return jnp.where(jax.random.uniform(k_con) < 0.5, stretched, x)


def augment_batch(key: jax.Array, cine: jax.Array) -> jax.Array:
  """:func:`augment` of each subject of ``cine [B, S, T, H, W]`` with its own key."""
  return jax.vmap(augment)(jax.random.split(key, cine.shape[0]), cine)
