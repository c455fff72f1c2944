"""SVR evaluation: PSNR/SSIM, motion error in degrees and mm, and outlier AUROC from the learned slice variance.

Two volume scores. :func:`masked_psnr_ssim` compares the reconstruction with
the ground truth in the simulator's frame, inside the brain mask after
min-max normalisation. :func:`registered_psnr_ssim` follows MetaSVR's
evaluation: the reconstruction is first rigidly registered to the ground
truth (MetaSVR uses ANTs; here SimpleITK, Mattes mutual information), both
are clipped at their 99.9th percentile and scaled to [0, 1], and the scores
are taken over the ground-truth mask's bounding box.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity
from sklearn.metrics import roc_auc_score

from jaxmed.svr.geometry import rotation_error_deg


def _minmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
  lo, hi = x[mask].min(), x[mask].max()
  return np.where(mask, (x - lo) / max(hi - lo, 1e-12), 0.0)


def masked_psnr_ssim(recon: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
  """PSNR (dB, peak 1) and mean SSIM over ``mask`` after min-max normalising both volumes inside it."""
  mask = np.asarray(mask, bool)
  a, b = _minmax(np.asarray(recon, np.float64), mask), _minmax(np.asarray(gt, np.float64), mask)
  mse = np.mean((a[mask] - b[mask]) ** 2)
  _, ssim_map = structural_similarity(a, b, data_range=1.0, full=True)
  return float(10 * np.log10(1.0 / max(mse, 1e-12))), float(ssim_map[mask].mean())


def registered_psnr_ssim(recon: np.ndarray, gt: np.ndarray, mask: np.ndarray, affine: np.ndarray, *,
                         clip_percentile: float = 99.9, register: bool = True) -> dict[str, float]:
  """PSNR / SSIM after rigid registration, percentile clipping and cropping to the mask's bounding box.

  Args:
    recon, gt, mask: ``[X, Y, Z]`` on the same grid (``affine`` [4, 4], world mm).
    register: rigidly register ``recon`` to ``gt`` first (SimpleITK); False scores it as it is.

  Returns:
    ``psnr`` (dB, peak 1), ``ssim`` (mean over the box), ``reg_rot_deg`` and ``reg_trans_mm`` (the registration's
    rotation angle and translation norm, a global offset between the reconstruction's frame and the truth's).
  """
  from jaxmed.svr import preprocess
  recon, gt = np.asarray(recon, np.float32), np.asarray(gt, np.float32)
  rot_deg = trans_mm = 0.0
  if register:
    sitk = preprocess._sitk()
    fixed, moving = preprocess.to_sitk(gt, affine), preprocess.to_sitk(recon, affine)
    tx = preprocess.rigid_register(fixed, moving, fixed_mask=sitk.Cast(preprocess.to_sitk(
        np.asarray(mask, np.float32), affine), sitk.sitkUInt8))
    recon = preprocess.from_sitk(sitk.Resample(moving, fixed, tx, sitk.sitkLinear, 0.0))
    m = preprocess.transform_matrix(tx)
    rot_deg = float(np.degrees(np.arccos(np.clip((np.trace(m[:3, :3]) - 1) / 2, -1, 1))))
    center = affine[:3, :3] @ ((np.array(gt.shape) - 1) / 2) + affine[:3, 3]
    trans_mm = float(np.linalg.norm(m[:3, :3] @ center + m[:3, 3] - center))
  box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(np.asarray(mask, bool)))

  def scaled(x):
    hi = np.percentile(x, clip_percentile)
    return np.clip(x, 0.0, hi)[box] / max(hi, 1e-12)

  a, b = scaled(recon), scaled(gt)
  mse = float(np.mean((a - b) ** 2))
  ssim = float(structural_similarity(a, b, data_range=1.0))
  return {"psnr": float(10 * np.log10(1.0 / max(mse, 1e-12))), "ssim": ssim, "reg_rot_deg": rot_deg,
          "reg_trans_mm": trans_mm}


def motion_errors(est: np.ndarray, true: np.ndarray, keep: np.ndarray | None = None,
                  rotation=None) -> tuple[float, float]:
  """Mean rotation error (degrees, geodesic) and translation error (mm, Euclidean) over slices ``keep``.

  ``est``, ``true``: ``[S, 6]`` (axis-angle rad, mm); ``rotation``: the matrix function (default axis-angle).
  """
  from jaxmed.svr.geometry import rotation_matrix
  rot = rotation or (lambda v: np.asarray(rotation_matrix(np.asarray(v, np.float32))))
  keep = np.ones(len(est), bool) if keep is None else np.asarray(keep, bool)
  deg = rotation_error_deg(rot(est[:, :3]), rot(true[:, :3]))
  mm = np.linalg.norm(np.asarray(est)[:, 3:] - np.asarray(true)[:, 3:], axis=1)
  return float(deg[keep].mean()), float(mm[keep].mean())


def informative_slices(counts: np.ndarray, fraction: float = 0.25) -> np.ndarray:
  """Slices holding at least ``fraction`` of the largest slice's masked pixels (``[S]`` bool).

  ``counts``: pixels per slice (:func:`~jaxmed.svr.slices.pixel_counts`). A slice grazing the brain carries
  almost no information about its rotation; motion errors are reported over these slices.
  """
  counts = np.asarray(counts)
  return counts >= fraction * counts.max()


def slice_sigma_in_volume_units(params) -> np.ndarray:
  """Each slice's learned noise sigma divided by its learned intensity scale: ``[S]``.

  The imaging model is ``y = c_s V(x) + e``, ``e ~ N(0, sigma_s^2)``, so
  ``y / c_s = V(x) + e / c_s``: ``sigma_s / c_s`` is slice ``s``'s noise on
  the volume's intensity scale, comparable across slices. The raw
  ``sigma_s`` is not: a slice whose whole signal dropped (``c_s`` small)
  fits the volume with a small raw residual.
  """
  return np.exp(np.asarray(params["slice"]["log_sigma"], np.float64)
                - np.asarray(params["slice"]["log_scale"], np.float64))


def outlier_auroc(corrupted: np.ndarray, sigma: np.ndarray, has_pixels: np.ndarray) -> float:
  """AUROC of a per-slice sigma ``[S]`` for flagging corrupted slices, over the slices ``has_pixels``.

  The experiment scores :func:`slice_sigma_in_volume_units` (and the raw sigma, for comparison).
  """
  has = np.asarray(has_pixels, bool)
  labels = np.asarray(corrupted, bool)[has]
  if labels.all() or not labels.any():
    return float("nan")
  return float(roc_auc_score(labels, np.asarray(sigma)[has]))
