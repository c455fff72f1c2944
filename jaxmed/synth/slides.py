"""Synthetic H&E whole slides whose stage depends on tissue architecture as well as on tumour burden.

Each slide is rendered in optical density: haematoxylin (nuclei) and eosin
(cytoplasm, stroma) concentration maps become RGB with scikit-image's
``hed2rgb`` (Ruifrok-Johnston vectors), so colour deconvolution and Macenko
estimation recover them. Sizes are physical: ``mpp`` microns per pixel, nuclei
of realistic radius (tumour 4.5 um, lymphocytes 3 um, elongated stromal
nuclei 2 um), so a slide rendered at 0.25 um/px looks like one at 0.5 um/px
seen closer.

Tissue classes (``TISSUES``): glass, stroma, tumour, lymphocytes, necrosis,
fat. Every section has the same amount of fat (about 12% of tissue in
lobules) and of lymphocytes (about 6%), whatever its stage, so a bag of
patch features cannot read the stage off how much of either there is.

The generating variables (``info["latent"]``), drawn per *patient* (all of
a patient's slides share them; each slide has its own geometry):

* ``burden`` ~ U(0.05, 0.30): the tumour's share of the tissue;
* ``invasive`` ~ Bernoulli(0.5): the tumour grows from a fat lobule's edge
  and borders fat (an invasion front), or it stays at least 25 um from fat;
* ``immune`` ~ U(0, 1): the share of the lymphocytes that cuff the tumour
  border (the rest sit in aggregates at least 60 um away).

The risk ``eta = (burden - 0.175) / 0.072 + 1.5 invasive - 2 immune + 0.5 noise``
is cut at its population tertiles (``stage_cutpoints``) into stages I-III,
so burden alone fixes the stage only in part (the burden-only logistic
oracle reaches well below the full one; ``tests/synth/test_slides.py``
measures both). Survival is exponential with hazard
``exp(0.7 (eta - noise part)) / 36`` per month, censored uniformly on [12, 120].
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy import ndimage, signal

TISSUES = ("glass", "stroma", "tumour", "lymphocytes", "necrosis", "fat")
NUM_STAGES = 3
LATENTS = ("burden", "invasive", "immune")
# nuclei per tissue: radius (um), nuclei per um^2, elongation, haematoxylin density
_NUCLEI = {"stroma": (2.0, 0.0016, 2.5, 0.08), "tumour": (4.5, 0.0055, 1.0, 0.10),
           "lymphocytes": (3.0, 0.016, 1.0, 0.14), "necrosis": (1.0, 0.004, 1.0, 0.05)}
FAT_FRACTION, LYMPH_FRACTION = 0.12, 0.06
NONINVASIVE_MARGIN_UM, COLD_DISTANCE_UM, CUFF_UM = 25.0, 60.0, 20.0


def risk_score(latent: dict, noise: float = 0.0) -> float:
  """The linear risk ``eta`` of the module docstring."""
  return ((latent["burden"] - 0.175) / 0.072 + 1.5 * latent["invasive"] - 2.0 * latent["immune"] + 0.5 * noise)


def draw_latent(rng: np.random.Generator) -> dict[str, float]:
  """One patient's generating variables and risk noise: ``{"burden", "invasive", "immune", "noise"}``."""
  return {"burden": float(rng.uniform(0.05, 0.30)), "invasive": float(rng.integers(2)),
          "immune": float(rng.uniform(0.0, 1.0)), "noise": float(rng.standard_normal())}


@functools.lru_cache(maxsize=1)
def stage_cutpoints() -> tuple[float, float]:
  """The population tertiles of ``eta`` (Monte Carlo, 200,000 draws, fixed seed): stage = number exceeded."""
  rng = np.random.default_rng(12345)
  n = 200_000
  eta = risk_score({"burden": rng.uniform(0.05, 0.30, n), "invasive": rng.integers(0, 2, n),
                    "immune": rng.uniform(0, 1, n)}, rng.standard_normal(n))
  lo, hi = np.quantile(eta, [1 / 3, 2 / 3])
  return float(lo), float(hi)


def stage_of(latent: dict) -> int:
  return int(np.searchsorted(np.asarray(stage_cutpoints()), risk_score(latent, latent["noise"])))


def latent_for_stage(rng: np.random.Generator, stage: int) -> dict[str, float]:
  """Generating variables drawn conditionally on ``stage`` (rejection sampling)."""
  while True:
    latent = draw_latent(rng)
    if stage_of(latent) == stage:
      return latent


def _smooth_field(rng, shape, scale):
  """Zero-mean unit-variance noise smoothed at ``scale`` pixels (built coarse, then upsampled: same look, fast)."""
  factor = max(1, int(scale // 3))
  coarse = [-(-n // factor) for n in shape]
  f = ndimage.gaussian_filter(rng.standard_normal(coarse), scale / factor, mode="wrap")
  if factor > 1:
    f = ndimage.zoom(f, factor, order=1)[:shape[0], :shape[1]]
  return (f - f.mean()) / (f.std() + 1e-8)


def _nuclei(rng, mask, density_px, radius_px, elongation=1.0):
  """A nuclear stain map in [0, 1]: ellipses of ``radius_px`` at Poisson points (``density_px`` per pixel) in ``mask``."""
  n = rng.poisson(density_px * mask.sum())
  out = np.zeros(mask.shape, np.float32)
  if n == 0:
    return out
  ys, xs = np.nonzero(mask)
  pick = rng.integers(0, len(ys), n)
  out[ys[pick], xs[pick]] = 1.0
  r = max(1, int(np.ceil(radius_px * elongation)))
  yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
  disc = ((yy / max(radius_px, 0.5)) ** 2 + (xx / max(radius_px * elongation, 0.5)) ** 2) <= 1.0
  return np.minimum(signal.fftconvolve(out, disc.astype(np.float32), mode="same"), 1.0).clip(0, 1).round()


def _grow(order_key: np.ndarray, allowed: np.ndarray, amount: float) -> np.ndarray:
  """The ``amount`` pixels of ``allowed`` with the smallest ``order_key`` (a region grown by a distance)."""
  out = np.zeros(allowed.shape, bool)
  k = int(min(max(amount, 0), allowed.sum()))
  if k:
    idx = np.flatnonzero(allowed)
    out.flat[idx[np.argsort(order_key.flat[idx], kind="stable")[:k]]] = True
  return out


def tissue_map(rng: np.random.Generator, size: int, latent: dict, *, mpp: float = 0.5
               ) -> tuple[np.ndarray, dict[str, float]]:
  """``[size, size]`` int map of ``TISSUES`` indices, and what was drawn (burden and contacts as measured)."""
  um = 1.0 / mpp  # pixels per micron
  yy, xx = np.mgrid[0:size, 0:size] / size
  r = np.hypot(yy - 0.5, xx - 0.5)
  tissue = (0.42 + 0.06 * _smooth_field(rng, (size, size), size / 10) - r) > 0
  tissue = ndimage.binary_fill_holes(ndimage.binary_opening(tissue, iterations=3))
  labels = np.where(tissue, TISSUES.index("stroma"), 0)
  n_tissue = tissue.sum()
  warp = _smooth_field(rng, (size, size), size / 24) * 8 * um  # irregular borders (pixels)

  fat = _grow(-_smooth_field(rng, (size, size), size / 14), tissue, FAT_FRACTION * n_tissue)
  fat = ndimage.binary_opening(fat, iterations=2)
  labels[fat] = TISSUES.index("fat")
  to_fat = ndimage.distance_transform_edt(~fat)

  # tumour: grown from one or two foci, at a fat lobule's edge (invasive) or away from fat
  n_foci = int(rng.integers(1, 3))
  if latent["invasive"]:
    allowed = tissue & ~fat
    seeds = np.flatnonzero(allowed & (to_fat <= 2 * um) & (r < 0.33))
  else:
    allowed = tissue & (to_fat > NONINVASIVE_MARGIN_UM * um)
    seeds = np.flatnonzero(allowed & (r < 0.33))
  seeds = seeds if len(seeds) else np.flatnonzero(allowed)
  centre = np.zeros((size, size), bool)
  centre.flat[rng.choice(seeds, n_foci)] = True
  to_focus = ndimage.distance_transform_edt(~centre) + warp
  tumour = _grow(to_focus, allowed, latent["burden"] * n_tissue)
  tumour = ndimage.binary_opening(tumour, iterations=1) & allowed
  if latent["burden"] > 0.2:  # large tumours have necrotic cores
    radius = np.sqrt(tumour.sum() / n_foci / np.pi)
    labels[tumour & (to_focus < 0.45 * radius)] = TISSUES.index("necrosis")
    tumour &= ~(to_focus < 0.45 * radius)
  labels[tumour] = TISSUES.index("tumour")
  lesion = tumour | (labels == TISSUES.index("necrosis"))

  # lymphocytes: a fixed amount, split between a cuff at the tumour border and aggregates away from it
  to_tumour = ndimage.distance_transform_edt(~lesion)
  free = tissue & ~lesion & ~fat
  amount = LYMPH_FRACTION * n_tissue
  patchy = _smooth_field(rng, (size, size), 6 * um) * 3 * um
  cuff = _grow(to_tumour + patchy, free & (to_tumour <= CUFF_UM * um), latent["immune"] * amount)
  far = free & ~cuff & (to_tumour > COLD_DISTANCE_UM * um)
  far = far if far.any() else free & ~cuff
  agg = np.zeros((size, size), bool)
  cand = np.flatnonzero(far)
  if len(cand):
    agg.flat[rng.choice(cand, 4)] = True
  cold = _grow(ndimage.distance_transform_edt(~agg) + patchy, far, (1 - latent["immune"]) * amount)
  labels[cuff | cold] = TISSUES.index("lymphocytes")

  lymph = labels == TISSUES.index("lymphocytes")
  border = lesion & ~ndimage.binary_erosion(lesion)
  near_fat = ndimage.binary_dilation(labels == TISSUES.index("fat"), iterations=2)
  return labels, {"tumour_burden": float(lesion.sum() / max(n_tissue, 1)), "foci": float(n_foci),
                  "fat_contact": float((border & near_fat).sum() / max(border.sum(), 1)),
                  "immune_contact": float((lymph & (to_tumour <= CUFF_UM * um)).sum() / max(lymph.sum(), 1))}


def render_he(rng: np.random.Generator, labels: np.ndarray, *, mpp: float = 0.5) -> np.ndarray:
  """RGB ``[H, W, 3]`` uint8 H&E rendering of a tissue map at ``mpp`` microns per pixel."""
  from skimage.color import hed2rgb

  shape = labels.shape
  um = 1.0 / mpp
  h = np.zeros(shape, np.float32)
  e = np.zeros(shape, np.float32)
  rows = np.mgrid[0:shape[0], 0:shape[1]][0] * mpp  # microns
  streaks = np.sin(2 * np.pi * (rows / 12.0 + 0.4 * _smooth_field(rng, shape, 8 * um)))
  grain = _smooth_field(rng, shape, 0.75 * um)
  is_ = {name: labels == i for i, name in enumerate(TISSUES)}
  e += is_["stroma"] * (0.05 + 0.015 * streaks)
  e += is_["tumour"] * 0.03 + is_["lymphocytes"] * 0.02
  e += is_["necrosis"] * (0.035 + 0.01 * grain)
  h += is_["necrosis"] * np.clip(0.015 * grain, 0, None)
  h += is_["tumour"] * 0.01
  fat_membrane = np.abs(_smooth_field(rng, shape, 3 * um)) < 0.12
  e += is_["fat"] * fat_membrane * 0.05
  for name, (radius, density, elongation, stain) in _NUCLEI.items():
    h += _nuclei(rng, is_[name], density * mpp ** 2, radius * um, elongation) * stain
  noise = 0.004 * rng.standard_normal(shape)
  tissue = labels > 0
  h = np.clip(h + tissue * noise, 0, None)
  e = np.clip(e + tissue * noise, 0, None)
  rgb = hed2rgb(np.stack([h, e, np.zeros(shape)], -1).astype(np.float64))
  glass = 0.94 + 0.01 * rng.standard_normal(shape)
  rgb = np.where(tissue[..., None], rgb, glass[..., None])
  return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def survival(rng: np.random.Generator, latent: dict) -> tuple[float, int]:
  """``(time in months, event)``: exponential with hazard ``exp(0.7 eta_0) / 36``, censored on U(12, 120)."""
  hazard = np.exp(0.7 * risk_score(latent)) / 36.0
  t = rng.exponential(1.0 / hazard)
  censor = rng.uniform(12.0, 120.0)
  return float(min(t, censor)), int(t <= censor)


def synthetic_slide(seed: int, *, size: int = 1024, mpp: float = 0.5, stage: int | None = None,
                    latent: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """One slide: RGB ``[size, size, 3]`` uint8 at ``mpp`` um/px, and its ground truth.

  ``latent`` (a patient's :func:`draw_latent`) is shared by a patient's slides;
  without it one is drawn (conditioned on ``stage`` when given). ``info``:
  ``{"tissue": [size, size] int map, "stage", "latent", "tumour_burden",
  "fat_contact", "immune_contact", "foci", "time" (months), "event"}``.
  """
  rng = np.random.default_rng(seed)
  if latent is None:
    latent = draw_latent(rng) if stage is None else latent_for_stage(rng, int(stage))
  labels, drawn = tissue_map(rng, size, latent, mpp=mpp)
  rgb = render_he(rng, labels, mpp=mpp)
  t, event = survival(np.random.default_rng([seed, 1]), latent)
  return rgb, {"tissue": labels, "stage": stage_of(latent), "latent": dict(latent), **drawn, "time": t,
               "event": event}


def synthetic_cohort(seed: int, num_slides: int, *, second_slide: float = 0.33) -> list[dict[str, Any]]:
  """Patients and their slides: ``[{"slide_seed", "patient", "latent", "stage", "time", "event"}]``.

  A share ``second_slide`` of the patients contribute two slides (two sections
  with the same label), so splits must group by patient. Survival is a
  patient's, drawn once.
  """
  rng = np.random.default_rng([seed, 7])
  out, patient = [], 0
  while len(out) < num_slides:
    latent = draw_latent(rng)
    t, event = survival(rng, latent)
    for _ in range(2 if rng.uniform() < second_slide else 1):
      if len(out) < num_slides:
        out.append({"slide_seed": seed * 100_000 + len(out), "patient": f"P{patient:04d}", "latent": latent,
                    "stage": stage_of(latent), "time": t, "event": event})
    patient += 1
  return out


def nuclei_tile(seed: int, *, size: int = 256, mpp: float = 0.5, count: int = 60, radius_um: float = 3.5,
                spacing: float = 1.8) -> tuple[np.ndarray, np.ndarray]:
  """An H&E tile (stroma background) with ``count`` known round nuclei: ``(rgb [size, size, 3], centres [K, 2])``.

  Centres are at least ``spacing`` radii apart (below 2: neighbours touch or
  overlap a little, which a segmentation must split); fewer than ``count``
  when the tile is full.
  """
  rng = np.random.default_rng(seed)
  r = radius_um / mpp
  centres: list[np.ndarray] = []
  for _ in range(count * 50):
    c = rng.uniform(r + 1, size - r - 1, 2)
    if all(np.hypot(*(c - d)) >= spacing * r for d in centres):
      centres.append(c)
      if len(centres) == count:
        break
  pts = np.array(centres)
  yy, xx = np.mgrid[0:size, 0:size]
  d = np.min(np.hypot(yy[..., None] - pts[:, 0], xx[..., None] - pts[:, 1]), axis=-1)
  grain = _smooth_field(rng, (size, size), 1.0 / mpp)
  h = np.clip(0.004 * rng.standard_normal((size, size)), 0, None) + 0.12 * (d <= r)
  e = 0.2 + 0.03 * grain  # dense eosinophilic stroma: its pixels pass Macenko's OD floor
  from skimage.color import hed2rgb
  out = (np.clip(hed2rgb(np.stack([h, e, np.zeros_like(h)], -1)), 0, 1) * 255).round().astype(np.uint8)
  return out, pts
