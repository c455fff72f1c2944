"""A fetal-brain-like 3D phantom and a simulator of motion-corrupted 2D slice stacks.

Phantom: nested ellipsoids (CSF around the brain, a folded cortical ribbon,
white matter, two lateral ventricles) with a smooth multiplicative texture,
T2-like contrast (CSF bright, cortex dark, white matter mid-grey), seeded
per subject.

Simulator (NumPy/SciPy, independent of :mod:`jaxmed.svr` so the imaging model
can be checked against it): three orthogonal stacks (axial, coronal,
sagittal) of thick slices; each pixel integrates the volume over the
Gaussian slice PSF (in plane FWHM 1.2 pixels, through plane FWHM = thickness)
by a Gauss-Hermite product rule; per-slice rigid motion about the slice
centre (``x -> R (x - c) + c + t``, axis-angle, the :mod:`jaxmed.svr.geometry`
convention), uniform or random walk, centred so the mean pose over all slices
is the identity (the reference frame SVR's drift regulariser fixes);
intensity drift along each stack, Gaussian noise, and a fraction of corrupted
slices (signal drop or a striped artefact). Works on any volume with an
affine, e.g. ``nibabel/tests/data/anatomical.nii``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
ORIENTATIONS = {  # slice-frame axes (columns: in-plane u, in-plane v, through-plane w) in world coordinates
    "axial": np.eye(3),
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "sagittal": np.array([[0, 0, 1.0], [1, 0, 0], [0, 1, 0]]),
}


def _smooth_noise(rng, shape, sigma):
  n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
  return n / (n.std() + 1e-8)


def fetal_brain_phantom(size: int = 48, spacing: float = 0.8, seed: int = 0) -> dict[str, np.ndarray]:
  """A seeded brain-like volume.

  Returns:
    ``volume [size]*3`` float32 in [0, 1], ``labels`` int32 (0 background, 1 CSF, 2 cortex, 3 white matter,
    4 ventricles), ``mask`` (labels > 0), ``affine [4, 4]`` (isotropic ``spacing`` mm, centred at 0).
  """
  rng = np.random.default_rng(seed)
  c = (np.arange(size) - (size - 1) / 2) / (size / 2)
  x, y, z = np.meshgrid(c, c, c, indexing="ij")
  rot = Rotation.from_rotvec(rng.uniform(-0.15, 0.15, 3)).as_matrix()
  p = np.stack([x, y, z], -1) @ rot.T
  radii = np.array([0.88, 0.78, 0.72]) * rng.uniform(0.92, 1.05, 3)
  r = np.sqrt(((p / radii) ** 2).sum(-1))
  theta, phi = np.arctan2(p[..., 1], p[..., 0]), np.arccos(np.clip(p[..., 2] / (np.linalg.norm(p, axis=-1) + 1e-8),
                                                                  -1, 1))
  k1, k2 = rng.integers(5, 9, 2)
  folds = 0.05 * np.sin(k1 * theta + rng.uniform(0, 6)) * np.sin(k2 * phi + rng.uniform(0, 6))
  labels = np.zeros(r.shape, np.int32)
  labels[r < 1.0] = 1                                       # CSF shell
  labels[r < 0.84 + folds] = 2                              # cortical ribbon (folded)
  labels[r < 0.66 + folds] = 3                              # white matter
  for side in (-1, 1):                                      # lateral ventricles
    q = (p - np.array([0.0, side * 0.22, 0.05]) * radii) / (np.array([0.5, 0.17, 0.28]) * radii)
    labels[(q ** 2).sum(-1) < 1.0] = 4
  base = np.array([0.0, 0.95, 0.35, 0.6, 1.0])[labels]
  texture = 1.0 + 0.08 * _smooth_noise(rng, r.shape, 2.0)
  # partial-volume smoothing (0.7 voxel): edges span about two voxels, as in a real acquisition
  volume = ndimage.gaussian_filter(np.clip(base * texture, 0.0, None), 0.7)
  volume = (volume / volume.max()).astype(np.float32)
  affine = np.diag([spacing, spacing, spacing, 1.0])
  affine[:3, 3] = -spacing * (size - 1) / 2
  return {"volume": volume, "labels": labels, "mask": labels > 0, "affine": affine}


def psf_quadrature(spacing_xy, thickness, points=(3, 3, 5)) -> tuple[np.ndarray, np.ndarray]:
  """Gauss-Hermite product rule for the slice PSF: offsets ``[k, 3]`` (slice frame, mm) and weights ``[k]``."""
  sig = np.array([1.2 * spacing_xy[0] / FWHM, 1.2 * spacing_xy[1] / FWHM, thickness / FWHM])
  axes = [np.polynomial.hermite_e.hermegauss(n) for n in points]
  nodes = np.stack(np.meshgrid(*[a[0] for a in axes], indexing="ij"), -1).reshape(-1, 3) * sig
  weights = np.prod(np.stack(np.meshgrid(*[a[1] for a in axes], indexing="ij"), -1).reshape(-1, 3), -1)
  return nodes.astype(np.float32), (weights / weights.sum()).astype(np.float32)


def slice_frame(orientation) -> np.ndarray:
  """A named orientation (``ORIENTATIONS``) or any ``[3, 3]`` rotation (an oblique stack) -> the frame ``[3, 3]``."""
  if isinstance(orientation, str):
    if orientation not in ORIENTATIONS:
      raise ValueError(f"orientation {orientation!r}; expected one of {sorted(ORIENTATIONS)} or a 3x3 rotation")
    return ORIENTATIONS[orientation]
  frame = np.asarray(orientation, np.float64)
  if frame.shape != (3, 3) or not np.allclose(frame.T @ frame, np.eye(3), atol=1e-6):
    raise ValueError(f"orientation: expected a 3x3 rotation matrix, got shape {frame.shape}")
  return frame


def stack_affine(orientation, shape: tuple[int, int, int], inplane: float, thickness: float,
                 center: np.ndarray) -> np.ndarray:
  """Affine of a stack whose centre voxel sits at world ``center`` (``orientation``: see :func:`slice_frame`)."""
  frame = slice_frame(orientation)
  affine = np.eye(4)
  affine[:3, :3] = frame * np.array([inplane, inplane, thickness])
  affine[:3, 3] = center - affine[:3, :3] @ ((np.array(shape) - 1) / 2)
  return affine


def rigid(params: np.ndarray, centers: np.ndarray) -> np.ndarray:
  """``[S, 6]`` (axis-angle rad, mm) about ``centers [S, 3]`` -> ``[S, 4, 4]``."""
  r = Rotation.from_rotvec(params[:, :3]).as_matrix()
  t = np.eye(4)[None].repeat(len(params), 0)
  t[:, :3, :3] = r
  t[:, :3, 3] = params[:, 3:] + centers - np.einsum("sij,sj->si", r, centers)
  return t


def draw_motion(rng, n: int, kind: str, max_rot_deg: float, max_trans_mm: float,
                jump_rate: float = 0.1) -> np.ndarray:
  """``[n, 6]`` motion in acquisition order, scaled so each component peaks at the maxima.

  ``uniform``: independent per slice; ``random_walk``: a Gaussian random walk; ``random_walk_jumps``: the
  walk plus abrupt inter-slice jumps (each slice starts one with probability ``jump_rate``, a step of 6
  walk-step standard deviations in a random direction), the sudden fetal movements of severe motion.
  """
  if kind == "uniform":
    m = rng.uniform(-1.0, 1.0, (n, 6))
  elif kind in ("random_walk", "random_walk_jumps"):
    steps = rng.standard_normal((n, 6))
    if kind == "random_walk_jumps":
      jumps = rng.random(n) < jump_rate
      n_jumps = int(jumps.sum())
      steps[jumps] += 6.0 * rng.choice([-1.0, 1.0], (n_jumps, 6)) * rng.uniform(0.5, 1.0, (n_jumps, 6))
    m = np.cumsum(steps, 0)
    m = m - m.mean(0)
    m = m / (np.abs(m).max(0) + 1e-8)
  elif kind == "none":
    m = np.zeros((n, 6))
  else:
    raise ValueError(f"motion {kind!r}; expected 'uniform', 'random_walk', 'random_walk_jumps' or 'none'")
  return m * np.r_[np.full(3, np.radians(max_rot_deg)), np.full(3, max_trans_mm)]


def acquire_stack(volume: np.ndarray, vol_affine: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int],
                  thickness: float, motion: np.ndarray, psf_points=(3, 3, 5)) -> np.ndarray:
  """Noise-free slices ``[X, Y, Z]`` of ``volume`` through the PSF, each slice moved by ``motion [Z, 6]``."""
  frame = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
  inplane = np.linalg.norm(affine[:3, :3], axis=0)[:2]
  offsets, weights = psf_quadrature(inplane, thickness, psf_points)
  i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
  vox = np.stack([i, j, k, np.ones_like(i)], -1).reshape(-1, 4).astype(np.float64)
  world = (vox @ affine.T)[:, :3]
  centers = (np.c_[np.full(shape[2], (shape[0] - 1) / 2), np.full(shape[2], (shape[1] - 1) / 2),
                   np.arange(shape[2]), np.ones(shape[2])] @ affine.T)[:, :3]
  t = rigid(motion, centers)[vox[:, 2].astype(int)]                                  # [P, 4, 4]
  pts = world[:, None, :] + offsets @ frame.T                                          # [P, k, 3]
  pts = np.einsum("pij,pkj->pki", t[:, :3, :3], pts) + t[:, None, :3, 3]
  inv = np.linalg.inv(vol_affine)
  vc = pts.reshape(-1, 3) @ inv[:3, :3].T + inv[:3, 3]
  vals = ndimage.map_coordinates(volume.astype(np.float64), vc.T, order=1, mode="constant", cval=0.0)
  return (vals.reshape(len(world), -1) @ weights).reshape(shape).astype(np.float32)


def simulate_stacks(volume: np.ndarray, vol_affine: np.ndarray, *, seed: int = 0, mask: np.ndarray | None = None,
                    orientations=("axial", "coronal", "sagittal"), inplane: float = 0.8, thickness: float = 2.4,
                    motion: str = "random_walk", max_rot_deg: float = 5.0, max_trans_mm: float = 5.0,
                    drift: float = 0.1, noise: float = 0.01, corrupt_fraction: float = 0.0,
                    psf_points=(3, 3, 5)) -> list[dict[str, Any]]:
  """Motion-corrupted thick-slice stacks of ``volume``.

  Returns one dict per stack: ``image [X, Y, Z]``, ``affine``, ``thickness``, ``mask`` (the moved brain mask, when
  ``mask`` is given), ``motion [Z, 6]`` (true per-slice motion, rad and mm, zero mean over all stacks' slices),
  ``scale [Z]`` (intensity drift), ``corrupted [Z]`` (bool) and ``orientation``.
  """
  rng = np.random.default_rng(seed)
  extent = np.abs(vol_affine[:3, :3]).sum(0) * np.array(volume.shape)
  center = (vol_affine @ np.r_[(np.array(volume.shape) - 1) / 2, 1.0])[:3]
  geoms = []
  for o in orientations:
    axes_extent = np.abs(slice_frame(o).T) @ extent
    shape = (int(np.ceil(axes_extent[0] / inplane)), int(np.ceil(axes_extent[1] / inplane)),
             int(np.ceil(axes_extent[2] / thickness)))
    geoms.append((o, shape, stack_affine(o, shape, inplane, thickness, center)))
  motions = [draw_motion(rng, g[1][2], motion, max_rot_deg, max_trans_mm) for g in geoms]
  mean = np.concatenate(motions).mean(0)
  stacks = []
  for (o, shape, affine), m in zip(geoms, motions):
    m = m - mean
    image = acquire_stack(volume, vol_affine, affine, shape, thickness, m, psf_points)
    scale = 1.0 + drift * rng.choice([-1, 1]) * np.linspace(-0.5, 0.5, shape[2])
    image = image * scale[None, None, :]
    # corrupt a fraction of the slices that hold signal (an empty edge slice cannot show an artefact)
    corrupted = np.zeros(shape[2], bool)
    content = np.flatnonzero(image.mean((0, 1)) > 0.2 * image.mean((0, 1)).max())
    if corrupt_fraction > 0:
      n = max(1, int(round(corrupt_fraction * len(content))))
      corrupted[rng.choice(content, n, replace=False)] = True
    for z in np.flatnonzero(corrupted):
      if rng.random() < 0.5:   # signal drop over a band of the slice
        band = slice(rng.integers(0, shape[1] // 2), shape[1])
        image[:, band, z] *= rng.uniform(0.0, 0.3)
      else:                    # striped artefact
        stripes = 0.4 * np.sin(np.arange(shape[0])[:, None] * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
        image[:, :, z] += stripes * image[:, :, z].max()
    image = image + noise * rng.standard_normal(shape)
    st = {"image": image.astype(np.float32), "affine": affine, "thickness": float(thickness), "motion": m,
          "scale": scale, "corrupted": corrupted, "orientation": o if isinstance(o, str) else "oblique"}
    if mask is not None:
      st["mask"] = acquire_stack(mask.astype(np.float32), vol_affine, affine, shape, thickness, m, psf_points) > 0.1
    stacks.append(st)
  return stacks
