"""Synthetic H&E whole slides with a known tissue map, stage and survival.

Each slide is rendered in optical density: haematoxylin (nuclei, blue-purple)
and eosin (cytoplasm and stroma, pink) concentration maps are turned into RGB
with scikit-image's ``hed2rgb`` (Ruifrok-Johnston stain vectors), so the
colour deconvolution used for nuclear features (``rgb2hed``) recovers them.

Tissue classes (``TISSUES``): background glass, stroma (streaky eosin, sparse
elongated nuclei), tumour (large crowded nuclei), lymphocyte-dense (small
dark nuclei, packed), necrosis (pale, granular debris) and fat (empty
vacuoles with thin membranes). Regions have smooth irregular boundaries from
thresholded smoothed noise.

Ground truth: the stage (0, 1, 2 for I-III) is drawn first and sets the
tumour burden (fraction of tissue) and spread (number of foci); stage III
tumours have necrotic cores and lymphocytes gather at tumour borders. A
survival time is exponential with hazard ``exp(0.9 * stage + 3 * (burden -
0.2) + 0.3 * noise)`` (scale 1/24 months) and is censored uniformly on
[12, 120] months.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

TISSUES = ("glass", "stroma", "tumour", "lymphocytes", "necrosis", "fat")
NUM_STAGES = 3
# per stage: tumour burden range (fraction of tissue) and number of foci
_BURDEN = ((0.04, 0.10), (0.12, 0.22), (0.25, 0.40))
_FOCI = ((1, 1), (2, 3), (3, 5))


def _smooth_field(rng, shape, scale):
  """Zero-mean unit-variance noise smoothed at ``scale`` pixels (built coarse, then upsampled: same look, fast)."""
  factor = max(1, int(scale // 3))
  coarse = [-(-n // factor) for n in shape]
  f = ndimage.gaussian_filter(rng.standard_normal(coarse), scale / factor, mode="wrap")
  if factor > 1:
    f = ndimage.zoom(f, factor, order=1)[:shape[0], :shape[1]]
  return (f - f.mean()) / (f.std() + 1e-8)


def _nuclei(rng, mask, density, radius, elongation=1.0):
  """A nuclear stain map: discs (or ellipses) of ``radius`` px at Poisson points of ``density`` per px."""
  h, w = mask.shape
  n = rng.poisson(density * mask.sum())
  out = np.zeros((h, w), np.float32)
  if n == 0:
    return out
  ys, xs = np.nonzero(mask)
  pick = rng.integers(0, len(ys), n)
  out[ys[pick], xs[pick]] = 1.0
  r = int(np.ceil(radius * elongation))
  yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
  disc = ((yy / radius) ** 2 + (xx / (radius * elongation)) ** 2) <= 1.0
  return np.minimum(ndimage.convolve(out, disc.astype(np.float32), mode="constant"), 1.0)


def tissue_map(rng: np.random.Generator, size: int, stage: int) -> tuple[np.ndarray, dict[str, float]]:
  """``[size, size]`` int map of ``TISSUES`` indices, and the tumour burden / foci actually drawn."""
  yy, xx = np.mgrid[0:size, 0:size] / size
  # the tissue section: an irregular blob covering most of the slide
  r = np.hypot(yy - 0.5, xx - 0.5)
  tissue = (0.42 + 0.06 * _smooth_field(rng, (size, size), size / 10) - r) > 0
  tissue = ndimage.binary_fill_holes(ndimage.binary_opening(tissue, iterations=3))
  labels = np.where(tissue, TISSUES.index("stroma"), 0)
  fat = (_smooth_field(rng, (size, size), size / 16) > 1.0) & tissue
  labels[fat] = TISSUES.index("fat")

  lo, hi = _BURDEN[stage]
  target = rng.uniform(lo, hi) * tissue.sum()
  n_foci = int(rng.integers(_FOCI[stage][0], _FOCI[stage][1] + 1))
  ty, tx = np.nonzero(tissue & (r < 0.33))
  centres = rng.integers(0, len(ty), n_foci)
  dist = np.full((size, size), np.inf)
  for c in centres:
    dist = np.minimum(dist, np.hypot(yy - ty[c] / size, xx - tx[c] / size))
  warp = 0.03 * _smooth_field(rng, (size, size), size / 20)
  # the radius that gives the target burden (irregular boundaries from the warp)
  level = np.sort((dist + warp)[tissue])
  radius = float(level[min(int(target), len(level) - 1)])
  tumour = (dist + warp < radius) & tissue
  ring = (dist + warp < radius + 0.04) & ~tumour & tissue
  labels[ring & (_smooth_field(rng, (size, size), size / 40) > -0.3)] = TISSUES.index("lymphocytes")
  labels[tumour] = TISSUES.index("tumour")
  if stage == NUM_STAGES - 1:
    core = (dist + warp < 0.45 * radius) & tumour
    labels[core] = TISSUES.index("necrosis")
  burden = float(((labels == TISSUES.index("tumour")) | (labels == TISSUES.index("necrosis"))).sum()
                 / max(tissue.sum(), 1))
  return labels, {"tumour_burden": burden, "foci": float(n_foci)}


def render_he(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
  """RGB ``[H, W, 3]`` uint8 H&E rendering of a tissue map."""
  from skimage.color import hed2rgb

  shape = labels.shape
  h = np.zeros(shape, np.float32)
  e = np.zeros(shape, np.float32)
  streaks = np.sin(40 * np.pi * (np.mgrid[0:shape[0], 0:shape[1]][0] / shape[0]
                                 + 0.05 * _smooth_field(rng, shape, 8)))
  grain = _smooth_field(rng, shape, 1.5)
  is_ = {name: labels == i for i, name in enumerate(TISSUES)}
  e += is_["stroma"] * (0.05 + 0.015 * streaks)
  e += is_["tumour"] * 0.03 + is_["lymphocytes"] * 0.02
  e += is_["necrosis"] * (0.035 + 0.01 * grain)
  h += is_["necrosis"] * np.clip(0.015 * grain, 0, None)
  h += is_["tumour"] * 0.01
  fat_membrane = np.abs(_smooth_field(rng, shape, 6)) < 0.12
  e += is_["fat"] * fat_membrane * 0.05
  h += _nuclei(rng, is_["stroma"], 0.0008, 2.0, elongation=2.5) * 0.08
  h += _nuclei(rng, is_["tumour"], 0.004, 4.0) * 0.10
  h += _nuclei(rng, is_["lymphocytes"], 0.012, 2.5) * 0.13
  h += _nuclei(rng, is_["necrosis"], 0.004, 1.0) * 0.05
  noise = 0.004 * rng.standard_normal(shape)
  tissue = labels > 0
  h = np.clip(h + tissue * noise, 0, None)
  e = np.clip(e + tissue * noise, 0, None)
  rgb = hed2rgb(np.stack([h, e, np.zeros(shape)], -1).astype(np.float64))
  glass = 0.94 + 0.01 * rng.standard_normal(shape)
  rgb = np.where(tissue[..., None], rgb, glass[..., None])
  return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def synthetic_slide(seed: int, *, size: int = 1024, stage: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """One slide: RGB ``[size, size, 3]`` uint8 and its ground truth.

  Returns ``(rgb, info)`` with ``info = {"tissue": [size, size] int map,
  "stage": int, "tumour_burden", "foci", "time" (months), "event" (1 =
  death observed, 0 = censored)}``.
  """
  rng = np.random.default_rng(seed)
  stage = int(rng.integers(NUM_STAGES)) if stage is None else int(stage)
  labels, drawn = tissue_map(rng, size, stage)
  rgb = render_he(rng, labels)
  hazard = np.exp(0.9 * stage + 3.0 * (drawn["tumour_burden"] - 0.2) + 0.3 * rng.standard_normal()) / 24.0
  t = rng.exponential(1.0 / hazard)
  censor = rng.uniform(12.0, 120.0)
  return rgb, {"tissue": labels, "stage": stage, **drawn, "time": float(min(t, censor)), "event": int(t <= censor)}
