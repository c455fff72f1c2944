"""A whole slide to region and patch graphs at physical resolutions, with memory bounded by the tile size.

Three resolutions, each in microns per pixel and each mapped to the best
pyramid level plus a resize (:func:`level_for_mpp`, :func:`read_at_mpp`):

1. ``mask_mpp`` (about 8-16 um/px): the whole-slide thumbnail, CLAM's tissue
   mask with ``min_tissue_um2`` / ``min_hole_um2`` in um^2;
2. ``region_mpp``: SLIC regions over the tissue, sized ``region_um2`` each
   (so the node count follows the tissue area, capped at ``max_regions``),
   and the ``patch_um`` grid of the patch-graph baseline. These label maps
   hold the whole slide but at low resolution (a 50 x 40 mm section at
   8 um/px is 6250 x 5000 int32, 125 MB);
3. ``graph_mpp``: features (:mod:`jaxmed.pathology.features`) read tile by
   tile, ``tile`` px cores with an ``overlap`` px margin, skipping tiles
   without tissue. Only one tile is in memory at a time.

The slide's stain vectors are fitted once (Macenko) on up to
``stain_windows`` 256 px windows at ``graph_mpp`` taken from tissue on a fixed
grid, so every tile, and every tile size, uses the same normalisation.

  out = slide_graphs(open_slide("case.svs"), graph_mpp=2.0, region_mpp=8.0, mask_mpp=16.0)
  out["region/x"], out["region/edges"], out["region/area_um2"], out["region/pos_um"], out["region/labels"]

``tile=0`` reads the whole ``graph_mpp`` level at once (the whole-level path,
for comparison only).
"""

from __future__ import annotations

import math
import time

import numpy as np

from jaxmed.io.slide import Slide, SlideError
from jaxmed.pathology import features as F
from jaxmed.pathology import stain as stain_lib
from jaxmed.pathology.regions import grid_regions, region_adjacency, slic_regions
from jaxmed.pathology.tissue import tissue_mask


def base_mpp(slide: Slide, slide_mpp: float = 0.0) -> float:
  """Microns per level-0 pixel: the file's (``openslide.mpp-x``), else ``slide_mpp``; a clear error without either."""
  mpp = slide.mpp
  if mpp is not None and mpp[0] > 0:
    return float(mpp[0])
  if slide_mpp > 0:
    return float(slide_mpp)
  raise SlideError(f"{slide.path}: the file records no microns per pixel (openslide.mpp-x); set the slide's "
                   "resolution (config data.slide_mpp, e.g. 0.25 for a 40x scan, 0.5 for 20x)")


def level_for_mpp(slide: Slide, mpp: float, slide_mpp: float = 0.0) -> tuple[int, float]:
  """``(level, level_mpp)``: the coarsest pyramid level at least as fine as ``mpp`` um/px, and its resolution."""
  mpp0 = base_mpp(slide, slide_mpp)
  want = mpp / mpp0
  levels = [k for k, d in enumerate(slide.level_downsamples) if d <= want * (1 + 1e-3)]
  level = max(levels, key=lambda k: slide.level_downsamples[k]) if levels else 0
  return level, mpp0 * slide.level_downsamples[level]


def size_at_mpp(slide: Slide, mpp: float, slide_mpp: float = 0.0) -> tuple[int, int]:
  """``(height, width)`` of the slide at ``mpp`` um/px."""
  w0, h0 = slide.level_dimensions[0]
  scale = base_mpp(slide, slide_mpp) / mpp
  return int(h0 * scale), int(w0 * scale)


MAX_READ_PX = 1 << 24  # level pixels per openslide read (64 MB of RGBA)


def read_at_mpp(slide: Slide, mpp: float, box: tuple[int, int, int, int] | None = None, *,
                slide_mpp: float = 0.0) -> np.ndarray:
  """RGB ``[h, w, 3]`` uint8 of ``box = (row, col, h, w)`` in pixels at ``mpp`` um/px (whole slide by default).

  Reads the level from :func:`level_for_mpp`; an integer factor ``k`` between
  it and ``mpp`` is a k x k box average, any other factor samples the
  nearest level pixel. Both are the same whether a region is read whole or
  in tiles. A request that spans more than ``MAX_READ_PX`` level pixels is
  read in row strips, so a shallow pyramid (no level near ``mpp``) costs
  memory for the output, not for the level.
  """
  if box is None:
    box = (0, 0, *size_at_mpp(slide, mpp, slide_mpp))
  r, c, h, w = (int(v) for v in box)
  level, level_mpp = level_for_mpp(slide, mpp, slide_mpp)
  s = mpp / level_mpp
  rows = max(1, int(MAX_READ_PX // max(w * s * s, 1.0)))
  if h > rows:
    return np.concatenate([read_at_mpp(slide, mpp, (r + i, c, min(rows, h - i), w), slide_mpp=slide_mpp)
                           for i in range(0, h, rows)])
  down = slide.level_downsamples[level]
  lw, lh = slide.level_dimensions[level]
  k = int(round(s))
  if abs(s - k) < 1e-3:
    y0, x0 = r * k, c * k
    hh, ww = min(h * k, lh - y0), min(w * k, lw - x0)
    img = slide.read_region((round(x0 * down), round(y0 * down)), level, (ww, hh))
    out = np.full((h, w, 3), 255, np.uint8)
    hk, wk = hh // k, ww // k
    if k == 1:
      out[:hk, :wk] = img[:hk, :wk]
    else:
      block = img[:hk * k, :wk * k].reshape(hk, k, wk, k, 3).astype(np.float32).mean((1, 3))
      out[:hk, :wk] = block.round().astype(np.uint8)
    return out
  ys = np.minimum(((np.arange(r, r + h) + 0.5) * s).astype(int), lh - 1)
  xs = np.minimum(((np.arange(c, c + w) + 0.5) * s).astype(int), lw - 1)
  img = slide.read_region((round(xs[0] * down), round(ys[0] * down)), level,
                          (int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)))
  return img[(ys - ys[0])[:, None], (xs - xs[0])[None, :]]


def _resample_labels(labels: np.ndarray, from_mpp: float, to_mpp: float, box: tuple[int, int, int, int]) -> np.ndarray:
  """Nearest-neighbour labels at ``to_mpp`` for ``box = (row, col, h, w)`` (pixel centres)."""
  r, c, h, w = box
  f = to_mpp / from_mpp
  ys = np.minimum(((np.arange(r, r + h) + 0.5) * f).astype(int), labels.shape[0] - 1)
  xs = np.minimum(((np.arange(c, c + w) + 0.5) * f).astype(int), labels.shape[1] - 1)
  return labels[ys[:, None], xs[None, :]]


def fit_stains(slide: Slide, mask: np.ndarray, mask_mpp: float, mpp: float, *, windows: int = 8, size: int = 256,
               slide_mpp: float = 0.0, seed: int = 0) -> stain_lib.Stains:
  """Macenko stains (tissue pixels only) from up to ``windows`` ``size``-px windows at ``mpp`` on a fixed grid.

  Windows more than half tissue are drawn first (fixed seed), then the most
  tissue-rich others, so a small slide or a thin section still gets a fit.
  """
  H, W = size_at_mpp(slide, mpp, slide_mpp)
  mask = mask.astype(np.int32)
  cands = []
  for r in range(0, H, size):
    for c in range(0, W, size):
      box = (r, c, min(size, H - r), min(size, W - c))
      frac = (_resample_labels(mask, mask_mpp, mpp, box) > 0).mean()
      if frac > 0:
        cands.append((frac > 0.5, frac, box))
  if not cands:
    raise SlideError(f"{slide.path}: no tissue at {mpp} um/px under the mask; cannot fit stain vectors")
  order = np.random.default_rng(seed).permutation(len(cands))
  order = sorted(order, key=lambda i: (not cands[i][0], 0.0 if cands[i][0] else -cands[i][1]))[:windows]
  tiles, masks = [], []
  for i in sorted(order):
    box = cands[i][2]
    tiles.append(read_at_mpp(slide, mpp, box, slide_mpp=slide_mpp).reshape(-1, 3))
    masks.append(_resample_labels(mask, mask_mpp, mpp, box).reshape(-1) > 0)
  return stain_lib.macenko_stains(np.concatenate(tiles)[:, None], np.concatenate(masks)[:, None])


def tile_grid(shape: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
  """Core boxes ``(row, col, h, w)`` covering ``shape`` in ``tile``-px steps (``tile = 0``: one box)."""
  H, W = shape
  if tile <= 0:
    return [(0, 0, H, W)]
  return [(r, c, min(tile, H - r), min(tile, W - c)) for r in range(0, H, tile) for c in range(0, W, tile)]


def slide_graphs(slide: Slide, *, graph_mpp: float = 2.0, region_mpp: float = 8.0, mask_mpp: float = 16.0,
                 region_um2: float = 20_000.0, max_regions: int = 4096, compactness: float = 10.0,
                 patch_um: float = 256.0, min_tissue_um2: float = 50_000.0, min_hole_um2: float = 10_000.0,
                 tile: int = 1024, overlap: int = 32, stain_windows: int = 8, slide_mpp: float = 0.0,
                 progress: bool = True) -> dict[str, np.ndarray]:
  """Region and patch graphs of one slide (module docstring). Returns a flat dict of arrays.

  Keys, for ``kind`` in ``region`` and ``patch``: ``{kind}/x [N, F]``,
  ``{kind}/area_um2 [N]``, ``{kind}/pos_um [N, 2]``, ``{kind}/edges [E, 2]``,
  ``{kind}/labels`` (the label map at ``region_mpp``); also ``mask`` (at
  ``region_mpp``), ``thumbnail`` (RGB at ``region_mpp``), ``stains [3, 2]``,
  ``mpp`` (graph, region, mask), ``tiles_read`` and ``megapixels`` (at
  ``graph_mpp``, tiles read).
  """
  from jaxmed import core

  thumb = read_at_mpp(slide, mask_mpp, slide_mpp=slide_mpp)
  mask = tissue_mask(thumb, min_area=max(1, int(min_tissue_um2 / mask_mpp ** 2)),
                     min_hole=max(1, int(min_hole_um2 / mask_mpp ** 2)))
  if not mask.any():
    raise SlideError(f"{slide.path}: no tissue found at {mask_mpp} um/px (min_tissue_um2 = {min_tissue_um2})")
  rgb_r = read_at_mpp(slide, region_mpp, slide_mpp=slide_mpp)
  mask_r = _resample_labels(mask.astype(np.int32), mask_mpp, region_mpp, (0, 0, *rgb_r.shape[:2])) > 0
  n_segments = int(min(max_regions, max(1, math.ceil(mask_r.sum() * region_mpp ** 2 / region_um2))))
  label_maps = {"region": slic_regions(rgb_r, mask_r, n_segments=n_segments, compactness=compactness),
                "patch": grid_regions(mask_r, max(1, int(round(patch_um / region_mpp))))}
  stains = fit_stains(slide, mask, mask_mpp, graph_mpp, windows=stain_windows, slide_mpp=slide_mpp)
  shape = size_at_mpp(slide, graph_mpp, slide_mpp)
  sums = {k: F.empty_sums(int(v.max())) for k, v in label_maps.items()}
  labelled = ((label_maps["region"] > 0) | (label_maps["patch"] > 0)).astype(np.int8)  # once, not per tile
  boxes = [b for b in tile_grid(shape, tile) if _resample_labels(labelled, region_mpp, graph_mpp, b).any()]
  t0, mpx = time.time(), 0.0
  bar = core.progress_bar(len(boxes), desc=f"{slide.path.rsplit('/', 1)[-1]} tiles") if progress else None
  for r, c, h, w in boxes:
    m = overlap if tile > 0 else 0
    R0, C0 = max(r - m, 0), max(c - m, 0)
    R1, C1 = min(r + h + m, shape[0]), min(c + w + m, shape[1])
    outer = (R0, C0, R1 - R0, C1 - C0)
    rgb = read_at_mpp(slide, graph_mpp, outer, slide_mpp=slide_mpp)
    labs = {k: _resample_labels(v, region_mpp, graph_mpp, outer) for k, v in label_maps.items()}
    F.tile_sums(sums, rgb, labs, (r - R0, r - R0 + h, c - C0, c - C0 + w), mpp=graph_mpp, stains=stains)
    mpx += h * w / 1e6
    if bar is not None:
      core.update_progress(bar, 1)
  if bar is not None:
    bar.close()
  out: dict[str, np.ndarray] = {"mask": mask_r, "thumbnail": rgb_r, "stains": stains.matrix,
                                "mpp": np.array([graph_mpp, region_mpp, mask_mpp]), "tiles_read": np.array(len(boxes)),
                                "megapixels": np.array(mpx), "feature_s": np.array(time.time() - t0)}
  for kind, labels in label_maps.items():
    x, extra = F.finish(sums[kind], labels, region_mpp)
    out.update({f"{kind}/x": x, f"{kind}/area_um2": extra["area_um2"], f"{kind}/pos_um": extra["centroid_um"],
                f"{kind}/edges": region_adjacency(labels), f"{kind}/labels": labels})
  return out
