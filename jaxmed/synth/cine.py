"""A 2D+t multi-coil cardiac cine phantom with a beating heart, smooth phase, coil maps and noise.

Per subject (seeded): a torso ellipse with lungs, liver and spine; a heart
with a left-ventricular blood pool, a myocardial ring and a right-ventricular
crescent, all at random positions, sizes and intensities. Over ``T`` frames
(one cardiac cycle) the LV blood pool contracts by ``contraction`` of its
radius and the myocardium thickens (its area is kept). The image carries a
smooth random phase. Coil maps are birdcage-like (``C`` loops around the
torso, each with a smooth magnitude fall-off and its own phase) and
normalised to ``sum_c |S_c|^2 = 1``. Fully sampled k-space gets complex
Gaussian noise of ``noise`` x its peak magnitude.
"""

from __future__ import annotations

import numpy as np


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
  c, s = np.cos(angle), np.sin(angle)
  y, x = yy - cy, xx - cx
  return ((c * x + s * y) / rx) ** 2 + ((-s * x + c * y) / ry) ** 2 <= 1.0


def birdcage_maps(h: int, w: int, coils: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
  """Coil maps ``[C, H, W]`` complex64, loops evenly around the FOV, normalised to ``sum_c |S_c|^2 = 1``."""
  rng = np.random.default_rng(0) if rng is None else rng
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None] - 0.5
  maps = []
  for c in range(coils):
    a = 2 * np.pi * c / coils + rng.uniform(-0.2, 0.2)
    cy, cx = 0.7 * np.sin(a), 0.7 * np.cos(a)
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    phase = a + 2.0 * ((yy - cy) * np.cos(a) - (xx - cx) * np.sin(a))
    maps.append(np.exp(-d2 / 0.45) * np.exp(1j * phase))
  maps = np.stack(maps)
  return (maps / np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))).astype(np.complex64)


def cine_phantom(seed: int, *, size: tuple[int, int] = (64, 64), frames: int = 16, coils: int = 8,
                 noise: float = 0.002, contraction: float = 0.3) -> dict[str, np.ndarray]:
  """One subject: ``{"image" [T, H, W], "maps" [C, H, W], "kspace" [T, C, H, W], "heart" [T, H, W] bool}``.

  ``image`` is the noise-free ground truth (complex64, peak magnitude about 1);
  ``kspace = fft2c(maps * image) + noise``. ``heart`` marks the LV blood pool
  and myocardium (for x-t profiles).
  """
  if not 4 <= coils <= 32:
    raise ValueError(f"cine_phantom: coils must lie in [4, 32], got {coils}")
  rng = np.random.default_rng(seed)
  h, w = size
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
  u = lambda lo, hi: rng.uniform(lo, hi)  # noqa: E731
  torso = _ellipse(yy, xx, 0.5, 0.5, u(0.36, 0.42), u(0.42, 0.47))
  static = 0.35 * torso.astype(np.float64)
  for side in (-1, 1):  # lungs
    static[_ellipse(yy, xx, 0.45 + u(-0.03, 0.03), 0.5 + side * u(0.2, 0.25), u(0.15, 0.2), u(0.09, 0.12))] = 0.05
  static[_ellipse(yy, xx, u(0.7, 0.75), u(0.35, 0.45), u(0.08, 0.1), u(0.12, 0.16))] = u(0.45, 0.55)  # liver
  static[_ellipse(yy, xx, u(0.82, 0.86), 0.5, 0.04, 0.04)] = u(0.7, 0.8)  # spine
  cy, cx = 0.48 + u(-0.04, 0.04), 0.52 + u(-0.04, 0.04)
  r_blood, r_wall = u(0.07, 0.09), u(0.035, 0.045)
  i_blood, i_myo, i_rv = u(0.9, 1.0), u(0.12, 0.2), u(0.75, 0.85)
  angle = u(0, np.pi)
  images, hearts = [], []
  for t in range(frames):
    squeeze = 1.0 - contraction * 0.5 * (1.0 - np.cos(2 * np.pi * t / frames))
    rb = r_blood * squeeze
    outer = np.sqrt(rb ** 2 + (r_blood + r_wall) ** 2 - r_blood ** 2)  # myocardial area kept
    img = static.copy()
    rv = _ellipse(yy, xx, cy - 0.02, cx - 1.1 * outer, 1.6 * outer, 0.9 * outer * squeeze ** 0.5, angle * 0.2)
    img[rv] = i_rv
    myo = _ellipse(yy, xx, cy, cx, outer, outer * 1.05, angle)
    blood = _ellipse(yy, xx, cy, cx, rb, rb * 1.05, angle)
    img[myo] = i_myo
    img[blood] = i_blood
    images.append(img)
    hearts.append(myo)
  images = np.stack(images)
  py, px = yy - 0.5, xx - 0.5
  phase = np.pi * (u(-0.5, 0.5) * py + u(-0.5, 0.5) * px + u(-0.5, 0.5) * py * px * 4 + u(-0.3, 0.3))
  image = (images * np.exp(1j * phase)[None]).astype(np.complex64)
  maps = birdcage_maps(h, w, coils, rng=rng)
  from jaxmed.mri.fft import fft2c
  kspace = np.asarray(fft2c(maps[None] * image[:, None]))
  scale = np.abs(kspace).max()
  kspace = kspace + noise * scale * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
  return {"image": image, "maps": maps, "kspace": kspace.astype(np.complex64), "heart": np.stack(hearts)}
