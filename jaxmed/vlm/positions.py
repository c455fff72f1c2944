"""Host-side index bookkeeping for Qwen2-VL: patch positions, frame segments and M-RoPE positions.

``grid_thw`` is one ``(t, h, w)`` per image in patches (the image processor's
``image_grid_thw``); the ``t * h * w`` patches of an image are ordered in
``spatial_merge_size`` x ``spatial_merge_size`` blocks, so every run of
``m * m`` consecutive patches is one language-model token after the merger.
All functions are NumPy: the shapes they produce decide the jitted shapes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Grid = Sequence[Sequence[int]]


def _check_grid(grid_thw: Grid, merge: int) -> list[tuple[int, int, int]]:
  out = []
  for i, g in enumerate(grid_thw):
    if len(g) != 3 or min(g) < 1:
      raise ValueError(f"image_grid_thw[{i}] = {list(g)}: expected (t, h, w) with positive entries")
    t, h, w = (int(x) for x in g)
    if h % merge or w % merge:
      raise ValueError(f"image_grid_thw[{i}] = {[t, h, w]}: h and w must be multiples of spatial_merge_size={merge}")
    out.append((t, h, w))
  return out


def num_image_tokens(grid_thw: Grid, merge: int) -> list[int]:
  """Language-model tokens per image: ``t * h * w / merge**2``."""
  return [t * h * w // merge ** 2 for t, h, w in _check_grid(grid_thw, merge)]


def patch_positions(grid_thw: Grid, merge: int) -> np.ndarray:
  """``[N, 2]`` (row, column) of every patch, in the processor's merge-block order, repeated per frame."""
  rows = []
  for t, h, w in _check_grid(grid_thw, merge):
    hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    block = lambda a: a.reshape(h // merge, merge, w // merge, merge).transpose(0, 2, 1, 3).reshape(-1)  # noqa: E731
    rows.append(np.tile(np.stack([block(hh), block(ww)], axis=-1), (t, 1)))
  return np.concatenate(rows).astype(np.int32)


def frame_segments(grid_thw: Grid, merge: int) -> np.ndarray:
  """``[N]`` segment id of every patch: each frame of each image attends only within itself."""
  sizes = [h * w for t, h, w in _check_grid(grid_thw, merge) for _ in range(t)]
  return np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)


def mrope_positions(tokens: np.ndarray, mask: np.ndarray, grid_thw: Grid, *, image_token_id: int,
                    merge: int) -> tuple[np.ndarray, np.ndarray]:
  """M-RoPE positions ``[3, B, T]`` (temporal, height, width) and the per-row offset ``[B]``.

  Text tokens count up on all three axes; an image's tokens sit on a grid
  starting at the running position (rows on the height axis, columns on the
  width axis, frames on the temporal axis), and the text after it resumes at
  that start plus ``max(h, w) / merge``. Padding (``mask`` 0) gets 0. Images
  are taken from ``grid_thw`` in order over the rows; each run of image
  tokens must be exactly one image. The offset is what decoding adds to a
  new token's 1D position: ``max position + 1 - number of real tokens``.
  """
  tokens, mask = np.asarray(tokens), np.asarray(mask).astype(bool)
  grids = _check_grid(grid_thw, merge)
  b, t_len = tokens.shape
  pos = np.zeros((3, b, t_len), np.int64)
  deltas = np.zeros((b,), np.int64)
  image = 0
  for row in range(b):
    idx = np.flatnonzero(mask[row])
    is_img = tokens[row, idx] == image_token_id
    out = np.zeros((3, len(idx)), np.int64)
    cur, i = 0, 0
    while i < len(idx):
      j = i
      while j < len(idx) and is_img[j] == is_img[i]:
        j += 1
      if not is_img[i]:
        out[:, i:j] = cur + np.arange(j - i)
        cur += j - i
      else:
        if image >= len(grids):
          raise ValueError(f"mrope_positions: row {row} has more image-token runs than image_grid_thw has images "
                           f"({len(grids)})")
        t, h, w = grids[image]
        gh, gw = h // merge, w // merge
        if j - i != t * gh * gw:
          raise ValueError(f"mrope_positions: row {row}, image {image}: {j - i} image tokens, but image_grid_thw "
                           f"{[t, h, w]} needs {t * gh * gw}")
        tt, hh, ww = np.meshgrid(np.arange(t), np.arange(gh), np.arange(gw), indexing="ij")
        out[:, i:j] = cur + np.stack([tt.ravel(), hh.ravel(), ww.ravel()])
        cur += max(gh, gw)
        image += 1
      i = j
    pos[:, row, idx] = out
    deltas[row] = (out.max() + 1 - len(idx)) if len(idx) else 0
  if image != len(grids):
    raise ValueError(f"mrope_positions: image_grid_thw has {len(grids)} images but the tokens hold {image}")
  return pos.astype(np.int32), deltas.astype(np.int32)
