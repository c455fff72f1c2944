"""Pre-processing of real slice stacks before SVR: intensity normalisation, N4, stack pre-alignment.

MetaSVR's pipeline normalises intensities, optionally corrects the bias field
and pre-aligns the stacks (FLIRT) before the fit; a brain mask per stack and a
background halo around it (``slices.prepare(halo_mm=...)``) choose the pixels.

* :func:`normalise_intensity`: each stack divided by a high percentile of its
  masked intensities, so the fit sees values near [0, 1] whatever the scanner's
  scale (the learning rates and the softplus output assume that range).
* :func:`n4_bias_correction`: SimpleITK's N4 on one stack (its physical
  spacing, so thick slices are handled), inside the mask.
* :func:`prealign_stacks`: rigid registration of every stack to a reference
  stack (SimpleITK, Mattes mutual information, three resolutions); the
  stack's affine is updated, the pixels are not resampled.

SimpleITK images are built from our arrays and affines directly, so physical
points are our world millimetres (no RAS/LPS flip: nothing is written through
ITK).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _sitk():
  try:
    import SimpleITK as sitk
  except ImportError as e:  # pragma: no cover - a declared dependency
    raise ImportError("jaxmed.svr.preprocess needs SimpleITK (pip install SimpleITK)") from e
  return sitk


def to_sitk(image: np.ndarray, affine: np.ndarray):
  """``image [X, Y, Z]`` with its ``affine [4, 4]`` (world mm) -> a SimpleITK image in the same world frame."""
  sitk = _sitk()
  affine = np.asarray(affine, np.float64)
  spacing = np.linalg.norm(affine[:3, :3], axis=0)
  img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 1, 0)))
  img.SetSpacing(tuple(float(s) for s in spacing))
  img.SetOrigin(tuple(float(o) for o in affine[:3, 3]))
  img.SetDirection(tuple(float(d) for d in (affine[:3, :3] / spacing).ravel()))
  return img


def from_sitk(img) -> np.ndarray:
  """A SimpleITK image -> ``[X, Y, Z]`` float32 array."""
  return _sitk().GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float32)


def normalise_intensity(stacks: Sequence[dict[str, Any]], percentile: float = 99.0) -> list[dict[str, Any]]:
  """Divides each stack by the ``percentile`` of its masked (else non-zero) intensities.

  Returns new stack dicts with ``image`` scaled and ``intensity_scale`` (the divisor) recorded.

  Raises:
    ValueError: naming the stack when it has no positive intensity inside its mask.
  """
  out = []
  for i, st in enumerate(stacks):
    image = np.asarray(st["image"], np.float32)
    mask = image > 0 if st.get("mask") is None else np.asarray(st["mask"], bool)
    vals = image[mask & (image > 0)]
    if vals.size == 0:
      raise ValueError(f"stack {i} ({st.get('path', 'in memory')}): no positive intensity inside its mask; "
                       "expected a brain mask that overlaps the image")
    scale = float(np.percentile(vals, percentile))
    out.append({**st, "image": image / scale, "intensity_scale": scale})
  return out


def n4_bias_correction(image: np.ndarray, affine: np.ndarray, mask: np.ndarray | None = None, *,
                       shrink: int = 2, iterations: Sequence[int] = (50, 50, 50)) -> np.ndarray:
  """N4 bias-field correction (Tustison et al. 2010, SimpleITK) of one stack ``[X, Y, Z]`` -> same shape.

  The bias field is estimated on an in-plane ``shrink``-fold downsampled copy inside ``mask`` (Otsu's
  threshold when ``None``) and divided out at full resolution.
  """
  sitk = _sitk()
  img = to_sitk(np.maximum(image, 0.0), affine)
  m = sitk.OtsuThreshold(img, 0, 1, 200) if mask is None else to_sitk(np.asarray(mask, np.float32), affine)
  m = sitk.Cast(m, sitk.sitkUInt8)
  shrink_factors = [shrink, shrink, 1]
  small, small_mask = sitk.Shrink(img, shrink_factors), sitk.Shrink(m, shrink_factors)
  n4 = sitk.N4BiasFieldCorrectionImageFilter()
  n4.SetMaximumNumberOfIterations([int(i) for i in iterations])
  n4.Execute(small, small_mask)
  log_bias = n4.GetLogBiasFieldAsImage(img)
  return (np.asarray(image, np.float32) / np.exp(from_sitk(log_bias))).astype(np.float32)


def rigid_register(fixed, moving, *, fixed_mask=None, iterations: int = 200, sampling: float = 0.25,
                   seed: int = 0):
  """Rigid registration of two SimpleITK images: the Euler transform mapping fixed points to moving points.

  Mattes mutual information (50 bins), regular-step gradient descent, three resolutions (shrink 4, 2, 1,
  smoothing 2, 1, 0 mm), started from the images' centres of mass.
  """
  sitk = _sitk()
  init = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                           sitk.CenteredTransformInitializerFilter.MOMENTS)
  reg = sitk.ImageRegistrationMethod()
  reg.SetMetricAsMattesMutualInformation(50)
  reg.SetMetricSamplingStrategy(reg.RANDOM)
  reg.SetMetricSamplingPercentage(sampling, seed)
  if fixed_mask is not None:
    reg.SetMetricFixedMask(fixed_mask)
  reg.SetInterpolator(sitk.sitkLinear)
  reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, iterations, relaxationFactor=0.6)
  reg.SetOptimizerScalesFromPhysicalShift()
  reg.SetShrinkFactorsPerLevel([4, 2, 1])
  reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
  reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
  reg.SetInitialTransform(init, inPlace=False)
  return reg.Execute(sitk.Cast(fixed, sitk.sitkFloat32), sitk.Cast(moving, sitk.sitkFloat32))


def transform_matrix(tx) -> np.ndarray:
  """A SimpleITK rigid/affine transform (possibly composite) -> ``[4, 4]`` mapping fixed to moving points."""
  pts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
  mapped = np.array([tx.TransformPoint(tuple(float(v) for v in p)) for p in pts])
  out = np.eye(4)
  out[:3, 3] = mapped[0]
  out[:3, :3] = (mapped[1:] - mapped[0]).T
  return out


def prealign_stacks(stacks: Sequence[dict[str, Any]], reference: int = 0, **kwargs) -> list[dict[str, Any]]:
  """Rigidly registers every stack to ``stacks[reference]`` and moves its affine there.

  A stack whose voxels sit at world ``A v`` is registered (fixed: the reference, moving: the stack) to
  ``T`` (fixed point -> moving point); its voxels belong at ``T^-1 A v``, so its affine becomes
  ``T^-1 A``. The pixels are not resampled. Returns new stack dicts with ``prealign [4, 4]`` (``T^-1``).
  """
  ref = stacks[reference]
  fixed = to_sitk(ref["image"], ref["affine"])
  fmask = None if ref.get("mask") is None else _sitk().Cast(to_sitk(np.asarray(ref["mask"], np.float32),
                                                                    ref["affine"]), _sitk().sitkUInt8)
  out = []
  for i, st in enumerate(stacks):
    if i == reference:
      out.append({**st, "prealign": np.eye(4)})
      continue
    tx = rigid_register(fixed, to_sitk(st["image"], st["affine"]), fixed_mask=fmask, **kwargs)
    inv = np.linalg.inv(transform_matrix(tx))
    out.append({**st, "affine": inv @ np.asarray(st["affine"], np.float64), "prealign": inv})
  return out
