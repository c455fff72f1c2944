"""The slice point-spread function, sampled by Monte Carlo (NeSVoR / MetaSVR).

A 2D MR slice pixel integrates the volume over a Gaussian PSF: in plane
``sigma = 1.2 * spacing / 2.355`` (FWHM 1.2 pixels), through plane
``sigma = thickness / 2.355`` (FWHM = slice thickness). Each pixel's value is
the mean of the volume at ``k`` Gaussian offsets around its centre, drawn in
the slice's own frame (so they rotate with the slice's motion).

MetaSVR ramps ``k`` up during a fit (few samples early, when only coarse
structure is learned), quadratically by default: :func:`psf_ramp` (linear,
quadratic or none). Here ``k`` moves over powers of two
so a jitted step recompiles at most ``log2(k_max) + 1`` times.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


def psf_sigmas(spacing_xy: tuple[float, float], thickness: float) -> np.ndarray:
  """Slice-frame PSF standard deviations in mm: ``[sx, sy, sz]``."""
  if not thickness or thickness <= 0:
    raise ValueError(f"slice thickness must be a positive number of mm, got {thickness!r}")
  return np.array([1.2 * spacing_xy[0] / FWHM, 1.2 * spacing_xy[1] / FWHM, thickness / FWHM], np.float32)


def psf_offsets(key: jax.Array, shape: tuple[int, ...], k: int, sigmas: jnp.ndarray) -> jnp.ndarray:
  """Gaussian PSF offsets in the slice frame (mm): ``[*shape, k, 3]``; ``sigmas`` broadcasts to ``[*shape, 3]``.

  With ``k == 1`` the single offset is 0 (the pixel centre, no PSF).
  """
  if k == 1:
    return jnp.zeros((*shape, 1, 3), jnp.float32)
  z = jax.random.normal(key, (*shape, k, 3), jnp.float32)
  return z * jnp.asarray(sigmas, jnp.float32)[..., None, :]


def psf_ramp(step: int, total_steps: int, k_max: int, schedule: str = "linear") -> int:
  """PSF sample count at ``step``: ``k_max * frac`` (``frac`` = progress, or its square, MetaSVR's quadratic
  ramp), rounded to a power of 2 (in log2).

  ``schedule="none"`` keeps ``k_max`` throughout.
  """
  if schedule == "none" or total_steps <= 0:
    return k_max
  frac = step / total_steps
  if schedule == "quadratic":
    frac = frac ** 2
  elif schedule != "linear":
    raise ValueError(f"psf schedule {schedule!r}; expected 'linear', 'quadratic' or 'none'")
  k = max(int(k_max * frac), 1)
  return min(2 ** int(round(math.log2(k))), k_max)
