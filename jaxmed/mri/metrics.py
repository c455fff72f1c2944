"""Reconstruction metrics on magnitude images, fastMRI conventions.

For a volume ``[T, H, W]``: PSNR = ``20 log10(max|gt| / sqrt(mean (|x| - |gt|)^2))``
with the peak over the whole volume; SSIM = scikit-image's
``structural_similarity`` on the magnitudes with ``data_range = max|gt|``
(averaged over frames); NMSE = ``||gt - x||^2 / ||gt||^2`` on magnitudes.
"""

from __future__ import annotations

import numpy as np


def psnr(x, gt) -> float:
  x, gt = np.abs(np.asarray(x)), np.abs(np.asarray(gt))
  mse = np.mean((x - gt) ** 2)
  return float(20 * np.log10(gt.max() / np.sqrt(mse))) if mse > 0 else float("inf")


def nmse(x, gt) -> float:
  x, gt = np.abs(np.asarray(x)), np.abs(np.asarray(gt))
  return float(np.sum((gt - x) ** 2) / np.sum(gt ** 2))


def ssim(x, gt) -> float:
  from skimage.metrics import structural_similarity

  x, gt = np.abs(np.asarray(x)), np.abs(np.asarray(gt))
  gt = gt.reshape(-1, *gt.shape[-2:])
  x = x.reshape(-1, *x.shape[-2:])
  rng = float(gt.max())
  return float(np.mean([structural_similarity(g, p, data_range=rng) for g, p in zip(gt, x)]))
