"""Synthetic organ-and-lesion image classification with controllable difficulty.

Each image ``[S, S]`` shows one organ-like shape (``ORGAN_NAMES``) at a
random pose, with or without a small focal lesion inside it. The class is
``organ * 2 + lesion`` (``CLASS_NAMES``, 8 classes), so a classifier must
find both the organ's shape and whether a lesion is present.

``difficulty`` in ``[0, 1]`` sets, together:

* the lesion's contrast against the organ: ``0.5 -> 0.1`` (it also gets
  smaller, radius ``0.22 -> 0.12`` of the half-width);
* Gaussian noise std: ``0.03 -> 0.25``;
* pose and shape jitter (rotation, scale, aspect) and a smooth intensity
  inhomogeneity;

so ``difficulty=0`` is near-trivially separable and ``difficulty=1`` is hard
for a small CNN. NumPy only, seeded and deterministic.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

ORGAN_NAMES = ("node", "vessel", "kidney", "liver")
CLASS_NAMES = tuple(f"{o}{suffix}" for o in ORGAN_NAMES for suffix in ("", "+lesion"))
NUM_CLASSES = len(CLASS_NAMES)


def _organ_mask(organ: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Inside-mask of the organ in its own frame (``u, v`` roughly in ``[-1, 1]``)."""
  r2 = u * u + v * v
  if organ == 0:  # node: a small disk
    return r2 < 0.35**2
  if organ == 1:  # vessel: a ring (wall around a dark lumen)
    return (r2 < 0.55**2) & (r2 > 0.32**2)
  if organ == 2:  # kidney: a bean, an ellipse with a notch (hilum) on one side
    return ((u / 0.45) ** 2 + (v / 0.7) ** 2 < 1) & ((u - 0.45) ** 2 + v * v > 0.22**2)
  return ((u / 0.75) ** 2 + (v / 0.6) ** 2 < 1) & (u + 0.6 * v < 0.35)  # liver: a large cut ellipse (wedge)


def _lesion_centre(organ: int, rng: np.random.Generator) -> np.ndarray:
  """A point well inside the organ, in its frame."""
  if organ == 1:  # in the vessel wall
    a = rng.uniform(0, 2 * np.pi)
    return 0.435 * np.array([np.cos(a), np.sin(a)])
  box = {0: 0.12, 2: 0.2, 3: 0.3}[organ]
  centre = rng.uniform(-box, box, 2)
  if organ == 2:
    centre[0] = -abs(centre[0]) - 0.05  # away from the hilum
  if organ == 3:
    centre -= 0.15
  return centre


def lesion_images(n: int, size: int = 16, *, difficulty: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
  """``n`` labelled images.

  Returns:
    ``images`` ``[n, size, size]`` float32 in about ``[0, 1]``; ``labels`` ``[n]``
    int32 in ``0..7`` (``organ * 2 + lesion``); ``organ`` ``[n]`` and
    ``lesion`` ``[n]`` (0/1).
  """
  if not 0.0 <= difficulty <= 1.0:
    raise ValueError(f"lesion_images: difficulty must be in [0, 1], got {difficulty}")
  rng = np.random.default_rng(seed)
  t = difficulty
  grid = np.linspace(-1, 1, size)
  y, x = np.meshgrid(grid, grid, indexing="ij")
  organ = rng.integers(0, len(ORGAN_NAMES), n)
  lesion = rng.integers(0, 2, n)
  images = np.empty((n, size, size), np.float32)
  for i in range(n):
    angle = rng.uniform(0, 2 * np.pi)
    scale = 1.0 + rng.uniform(-0.25, 0.25) * (0.3 + t)
    aspect = 1.0 + rng.uniform(-0.2, 0.2) * (0.3 + t)
    shift = rng.uniform(-0.15, 0.15, 2) * (0.5 + t)
    c, s = np.cos(angle), np.sin(angle)
    xs, ys = x - shift[0], y - shift[1]
    u = (c * xs + s * ys) / (scale * aspect)
    v = (-s * xs + c * ys) * aspect / scale
    mask = _organ_mask(int(organ[i]), u, v).astype(np.float32)
    tissue = rng.uniform(0.45, 0.65)
    img = 0.1 + tissue * mask
    if lesion[i]:
      centre = _lesion_centre(int(organ[i]), rng)
      radius = 0.22 - 0.10 * t
      spot = ((u - centre[0]) ** 2 + (v - centre[1]) ** 2) < radius**2
      contrast = (0.5 - 0.4 * t) * rng.choice([-1.0, 1.0])  # hyper- or hypo-intense
      img = img + contrast * (spot * mask)
    gx, gy = rng.normal(size=2) * 0.15 * t  # smooth inhomogeneity (bias field)
    img = img * (1.0 + gx * x + gy * y)
    img = scipy.ndimage.gaussian_filter(img, 0.6)
    images[i] = img + rng.normal(scale=0.03 + 0.22 * t, size=img.shape)
  return {"images": images, "labels": (organ * 2 + lesion).astype(np.int32), "organ": organ.astype(np.int32),
          "lesion": lesion.astype(np.int32)}
