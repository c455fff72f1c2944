"""Macenko stain estimation and normalisation of H&E images (Macenko et al., ISBI 2009).

In optical density ``OD = -ln((I + 1) / Io)`` every pixel is a nonnegative mix
of a haematoxylin and an eosin vector: ``OD = S c`` with ``S [3, 2]``.
Macenko's estimate of ``S``:

1. drop near-transparent pixels (any channel's OD below ``beta``);
2. project the rest onto the plane of the two leading eigenvectors of
   their OD covariance;
3. the ``alpha`` and ``100 - alpha`` percentiles of the angle in that plane
   are the two stain directions; haematoxylin is the one with the larger
   red OD (it absorbs red; eosin barely does).

Concentrations are the least-squares ``c = S^+ OD``; normalisation rescales
each stain's concentration so its 99th percentile matches a reference and
re-renders with the reference vectors. The reference (``HE_REF``,
``MAX_C_REF``) is the one used by Macenko-normaliser implementations in
common use (torchstain, staintools' defaults). Estimate ``S`` once per
slide (from its thumbnail), then normalise every tile with it, so tiles of
one slide agree.

  stains = macenko_stains(thumbnail_rgb, tissue_mask)
  h, e = stain_concentrations(tile_rgb, stains)      # [h, w] each, in the reference's units
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IO = 240.0
HE_REF = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
MAX_C_REF = np.array([1.9705, 1.0308])


class Stains(NamedTuple):
  matrix: np.ndarray  # [3, 2] unit OD vectors, columns (haematoxylin, eosin)
  max_c: np.ndarray   # [2] 99th percentile of each stain's concentration on the fitted pixels


def optical_density(rgb: np.ndarray, io: float = IO) -> np.ndarray:
  """``[..., 3]`` OD of RGB uint8: ``-ln((I + 1) / io)`` (slightly negative for pixels brighter than ``io``)."""
  return -np.log((np.asarray(rgb, np.float64) + 1.0) / io)


def macenko_stains(rgb: np.ndarray, mask: np.ndarray | None = None, *, alpha: float = 1.0, beta: float = 0.15,
                   io: float = IO, max_pixels: int = 1_000_000, seed: int = 0) -> Stains:
  """Stain vectors and max concentrations of ``rgb [H, W, 3]`` uint8 over ``mask`` (module docstring).

  The vectors come from the stained pixels; the 99th percentiles from every
  pixel under ``mask`` (all of them without one, as torchstain does).
  At most ``max_pixels`` (a fixed random subset) enter the fit, so a large
  thumbnail costs no more than a small one. Raises ``ValueError`` when fewer
  than 100 stained pixels remain (a blank or all-glass image).
  """
  pixels = optical_density(rgb, io).reshape(-1, 3)
  if mask is not None:
    pixels = pixels[np.asarray(mask, bool).reshape(-1)]
  rng = np.random.default_rng(seed)
  if len(pixels) > max_pixels:
    pixels = pixels[rng.choice(len(pixels), max_pixels, replace=False)]
  od = pixels[np.all(pixels >= beta, axis=1)]
  if len(od) < 100:
    raise ValueError(f"macenko_stains: only {len(od)} stained pixels (OD >= {beta} in every channel); expected "
                     "an H&E image with tissue")
  _, vecs = np.linalg.eigh(np.cov(od.T))
  plane = vecs[:, 1:3]  # the two leading eigenvectors (eigh sorts ascending)
  proj = od @ plane
  phi = np.arctan2(proj[:, 1], proj[:, 0])
  lo, hi = np.percentile(phi, [alpha, 100 - alpha])
  v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
  v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
  v1, v2 = (v if v.sum() >= 0 else -v for v in (v1, v2))  # OD vectors are nonnegative up to the eigh sign
  matrix = np.stack([v1, v2], 1) if v1[0] > v2[0] else np.stack([v2, v1], 1)
  matrix /= np.linalg.norm(matrix, axis=0, keepdims=True)
  conc = np.linalg.lstsq(matrix, pixels.T, rcond=None)[0]  # over every (masked) pixel, glass included
  return Stains(matrix, np.percentile(conc, 99, axis=1))


def stain_concentrations(rgb: np.ndarray, stains: Stains, *, io: float = IO) -> tuple[np.ndarray, np.ndarray]:
  """Haematoxylin and eosin concentrations ``[H, W]`` each, rescaled to the reference (``MAX_C_REF``)."""
  od = optical_density(rgb, io)
  conc = od.reshape(-1, 3) @ np.linalg.pinv(stains.matrix).T  # [P, 2]
  conc *= MAX_C_REF / stains.max_c
  conc = conc.reshape(*od.shape[:-1], 2).astype(np.float32)
  return conc[..., 0], conc[..., 1]


def normalise_stains(rgb: np.ndarray, stains: Stains, *, io: float = IO) -> np.ndarray:
  """``rgb`` re-rendered with the reference stain vectors and concentration scale: ``[H, W, 3]`` uint8."""
  h, e = stain_concentrations(rgb, stains, io=io)
  od = np.stack([h, e], -1).astype(np.float64) @ HE_REF.T
  return np.clip(io * np.exp(-od), 0, 255).astype(np.uint8)
