"""Reconstruction metrics on magnitude images, fastMRI conventions.

For a volume ``[T, H, W]``: PSNR = ``20 log10(max|gt| / sqrt(mean (|x| - |gt|)^2))``
with the peak over the whole volume; SSIM = scikit-image's
``structural_similarity`` on the magnitudes with ``data_range = max|gt|``
(averaged over frames); NMSE = ``||gt - x||^2 / ||gt||^2`` on magnitudes.

:func:`psnr_frames` and :func:`ssim_frames` are the official SSFL-Recon code's conventions (per frame, PSNR on
complex images against frame 0's peak), reported beside the fastMRI ones under their own keys.
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


def psnr_frames(x, gt) -> float:
  """The official SSFL-Recon PSNR (``evaluation/metrics.py``): per frame on the *complex* images,
  ``10 log10(peak^2 / mean|gt_t - x_t|^2)`` with ``peak = max|gt_0|`` (frame 0's peak, for every frame), averaged
  over frames; ``x, gt [T, H, W]``."""
  x, gt = np.asarray(x), np.asarray(gt)
  peak = np.abs(gt[0]).max()
  mse = np.mean(np.abs(gt - x) ** 2, axis=(1, 2))
  return float(np.mean(10 * np.log10(peak ** 2 / np.maximum(mse, 1e-30))))


def ssim_frames(x, gt) -> float:
  """The official SSFL-Recon SSIM: per frame on magnitudes with ``data_range = max|gt_t|`` of that frame."""
  from skimage.metrics import structural_similarity
  x, gt = np.abs(np.asarray(x)), np.abs(np.asarray(gt))
  return float(np.mean([structural_similarity(g, p, data_range=float(g.max())) for g, p in zip(gt, x)]))
