"""Synthetic brain-like atlas and subjects for deformable registration (2D or 3D).

An anatomical label atlas (skull, cortex with gyri, white matter, ventricles,
deep grey nuclei) is warped by random smooth diffeomorphisms into subjects.
Each subject gets its own tissue intensities, a multiplicative bias field and
noise. The ground truth (labels and the deformation) is returned with the
images. NumPy/SciPy only, seeded and deterministic: ``synth`` sits below the
method packages, so it resamples with ``scipy.ndimage`` rather than importing
``jaxmed.registration``'s warp; ``tests/synth`` checks the two agree (the
registration warp reproduces the subjects' labels from the atlas exactly).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.ndimage

LABEL_NAMES = ("background", "skull", "cortex", "white_matter", "ventricles", "deep_grey")
NUM_LABELS = len(LABEL_NAMES)
# T1-like mean intensities per label; each subject jitters them.
_INTENSITY = np.array([0.0, 0.3, 0.55, 0.8, 0.15, 0.65])


def _coords(shape: Sequence[int]) -> np.ndarray:
  """Normalised coordinates in [-1, 1]: ``[n, *S]``."""
  return np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))


def _ellipsoid(c: np.ndarray, centre, radii) -> np.ndarray:
  return sum(((c[i] - centre[i]) / radii[i]) ** 2 for i in range(len(c)))


def brain_atlas(shape: Sequence[int]) -> np.ndarray:
  """Integer label atlas ``[*S]`` with labels ``0..5`` (see :data:`LABEL_NAMES`)."""
  n = len(shape)
  if n not in (2, 3):
    raise ValueError(f"brain_atlas: shape must be 2D or 3D, got {tuple(shape)}")
  c = _coords(shape)
  zero = (0.0,) * n
  r = lambda *v: tuple(v[:n]) if n == 3 else tuple(v[:2])  # noqa: E731
  angle = np.arctan2(c[1], c[0])
  gyri = 1.0 + 0.06 * np.sin(7 * angle)  # a wavy grey/white boundary
  labels = np.zeros(shape, np.int32)
  labels[_ellipsoid(c, zero, r(0.92, 0.78, 0.85)) <= 1] = 1
  labels[_ellipsoid(c, zero, r(0.82, 0.68, 0.75)) <= 1] = 2
  labels[_ellipsoid(c, zero, r(0.62, 0.5, 0.58)) <= gyri] = 3
  for side in (-1, 1):
    labels[_ellipsoid(c, r(0.0, side * 0.12, 0.0), r(0.3, 0.07, 0.18)) <= 1] = 4
    labels[_ellipsoid(c, r(0.25, side * 0.3, 0.0), r(0.12, 0.1, 0.12)) <= 1] = 5
  return labels


def _smooth_field(rng: np.random.Generator, shape: Sequence[int], channels: int, control: int, scale: float):
  """Cubic-interpolated Gaussian noise on a ``control``-point lattice: ``[*S, channels]``."""
  n = len(shape)
  lattice = rng.normal(0.0, scale, size=(channels,) + (control,) * n)
  grid = np.meshgrid(*[np.linspace(0, control - 1, s) for s in shape], indexing="ij")
  return np.stack([scipy.ndimage.map_coordinates(lattice[k], grid, order=3, mode="nearest")
                   for k in range(channels)], axis=-1)


def _warp_np(volume: np.ndarray, disp: np.ndarray, order: int) -> np.ndarray:
  coords = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in volume.shape], indexing="ij"))
  coords = coords + np.moveaxis(disp, -1, 0)
  return scipy.ndimage.map_coordinates(volume, coords, order=order, mode="nearest")


def random_diffeomorphism(rng: np.random.Generator, shape: Sequence[int], *, scale: float,
                          control: int = 5, steps: int = 7) -> np.ndarray:
  """Displacement ``[*S, n]`` (voxels) of ``exp(v)`` for a smooth random velocity ``v``.

  ``v`` has per-control-point standard deviation ``scale`` voxels; scaling and
  squaring with ``steps`` squarings keeps the map invertible.
  """
  n = len(shape)
  disp = _smooth_field(rng, shape, n, control, scale) / 2.0 ** steps
  for _ in range(steps):
    disp = disp + np.stack([_warp_np(disp[..., k], disp, 1) for k in range(n)], axis=-1)
  return disp


def pair_displacement(disp_moving: np.ndarray, disp_fixed: np.ndarray, *, iters: int = 200,
                      damping: float = 0.5) -> np.ndarray:
  """The true moving-to-fixed displacement of two atlas subjects: ``[*S, n]`` (voxels), the ARC's oracle.

  Subject labels are ``atlas(x + d(x))``, so ``moving(x + u(x)) = fixed(x)``
  when ``x + u(x) = phi_m^{-1}(x + d_f(x))`` with ``phi_m(y) = y + d_m(y)``.
  The inverse is the fixed point of ``y = z - d_m(y)``, found by the damped
  iteration ``y <- y + damping (z - d_m(y) - y)``, which contracts wherever
  ``phi_m`` is locally invertible (``I + grad d_m`` has eigenvalues > 0).
  """
  shape = disp_moving.shape[:-1]
  grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), axis=-1)
  target = grid + disp_fixed
  y = target.copy()
  for _ in range(iters):
    sampled = np.stack([scipy.ndimage.map_coordinates(disp_moving[..., k], np.moveaxis(y, -1, 0), order=1,
                                                      mode="nearest") for k in range(len(shape))], axis=-1)
    y = y + damping * (target - sampled - y)
  return (y - grid).astype(np.float32)


def atlas_subjects(n_subjects: int, shape: Sequence[int], *, seed: int = 0, deform_scale: float | None = None,
                   noise: float = 0.02, bias: float = 0.1) -> dict[str, np.ndarray]:
  """Subjects drawn from the atlas.

  Args:
    n_subjects: number of subjects ``N``.
    shape: spatial shape ``S`` (2D or 3D).
    seed: the only source of randomness.
    deform_scale: velocity std in voxels; default ``0.06 * min(S)``.
    noise: Gaussian noise std (intensities are in [0, 1]).
    bias: std of the log bias field.

  Returns:
    ``images`` float32 ``[N, *S]``, ``labels`` int32 ``[N, *S]``,
    ``displacements`` float32 ``[N, *S, n]`` (atlas -> subject, voxels) and
    ``atlas`` int32 ``[*S]``.
  """
  rng = np.random.default_rng(seed)
  atlas = brain_atlas(shape)
  scale = 0.06 * min(shape) if deform_scale is None else deform_scale
  images, labels, disps = [], [], []
  for _ in range(n_subjects):
    disp = random_diffeomorphism(rng, shape, scale=scale)
    lab = _warp_np(atlas.astype(np.float64), disp, 0).round().astype(np.int32)
    means = _INTENSITY + rng.normal(0.0, 0.04, NUM_LABELS) * (_INTENSITY > 0)
    img = scipy.ndimage.gaussian_filter(means[lab], 0.6)
    img = img * np.exp(_smooth_field(rng, shape, 1, 3, bias)[..., 0])
    img = img + rng.normal(0.0, noise, shape)
    images.append(np.clip(img, 0.0, None).astype(np.float32))
    labels.append(lab)
    disps.append(disp.astype(np.float32))
  return {"images": np.stack(images), "labels": np.stack(labels), "displacements": np.stack(disps), "atlas": atlas}


def registration_pairs(n_subjects: int, n_pairs: int, *, seed: int = 0) -> np.ndarray:
  """``[n_pairs, 2]`` (moving, fixed) subject indices with moving != fixed, seeded."""
  rng = np.random.default_rng(seed)
  moving = rng.integers(0, n_subjects, n_pairs)
  fixed = (moving + rng.integers(1, n_subjects, n_pairs)) % n_subjects
  return np.stack([moving, fixed], axis=1)
