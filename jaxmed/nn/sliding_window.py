"""Sliding-window inference with Gaussian importance weighting (nnU-Net's scheme) over a 3D volume."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from jaxmed.core import progress_bar, update_progress


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
  """``[*patch]`` Gaussian weight centred on the patch, sigma = ``sigma_scale`` x size, max 1.

  Zeros are replaced by the smallest positive weight, so every voxel of a
  patch counts a little.
  """
  axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (sigma_scale * n)) ** 2) for n in patch]
  w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
  w = w / w.max()
  w[w == 0] = w[w > 0].min()
  return w.astype(np.float32)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
  """Evenly spaced patch starts covering ``[0, size)`` with step <= ``patch * (1 - overlap)``."""
  if size <= patch:
    return [0]
  step = max(1, int(patch * (1 - overlap)))
  n = int(np.ceil((size - patch) / step)) + 1
  return [int(round(s)) for s in np.linspace(0, size - patch, n)]


def sliding_window_inference(predict: Callable[[np.ndarray], np.ndarray], volume: np.ndarray,
                             patch: Sequence[int], *, overlap: float = 0.5, batch_size: int = 4,
                             sigma_scale: float = 0.125, progress: str | None = None) -> np.ndarray:
  """Gaussian-weighted average of ``predict`` over overlapping patches.

  Args:
    predict: ``[B, *patch, C] -> [B, *patch, K]`` (e.g. a jitted softmax of
      a U-Net); called with exactly ``batch_size`` patches (the last batch is
      padded), so it compiles once.
    volume: ``[D, H, W, C]``; padded (edge) up to ``patch`` where smaller.
    patch: ``(pd, ph, pw)``.
    overlap: fraction of a patch shared by neighbours (0.5 as nnU-Net).

  Returns:
    ``[D, H, W, K]`` float32, the weighted mean prediction.
  """
  shape = np.asarray(volume.shape[:3])
  pad = np.maximum(np.asarray(patch) - shape, 0)
  vol = np.pad(volume, [(0, p) for p in pad] + [(0, 0)], mode="edge") if pad.any() else volume
  weight = gaussian_importance(patch, sigma_scale)
  corners = [(a, b, c) for a in window_starts(vol.shape[0], patch[0], overlap)
             for b in window_starts(vol.shape[1], patch[1], overlap)
             for c in window_starts(vol.shape[2], patch[2], overlap)]
  acc, norm = None, np.zeros(vol.shape[:3], np.float32)
  bar = progress_bar(len(corners), desc=progress) if progress else None
  for k in range(0, len(corners), batch_size):
    chunk = corners[k:k + batch_size]
    x = np.stack([vol[a:a + patch[0], b:b + patch[1], c:c + patch[2]] for a, b, c in chunk])
    if len(chunk) < batch_size:
      x = np.concatenate([x, np.repeat(x[-1:], batch_size - len(chunk), 0)])
    y = np.asarray(predict(x))[:len(chunk)]
    if acc is None:
      acc = np.zeros(tuple(vol.shape[:3]) + (y.shape[-1],), np.float32)
    for (a, b, c), yk in zip(chunk, y):
      sl = (slice(a, a + patch[0]), slice(b, b + patch[1]), slice(c, c + patch[2]))
      acc[sl] += yk * weight[..., None]
      norm[sl] += weight
    if bar is not None:
      update_progress(bar, len(chunk))
  if bar is not None:
    bar.close()
  out = acc / norm[..., None]
  return out[:shape[0], :shape[1], :shape[2]]
