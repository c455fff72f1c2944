"""Named, interpretable node features of tissue regions, accumulated tile by tile.

Every feature has a name (``FEATURE_NAMES``) so attributions read as words,
and a physical unit, so slides scanned at different resolutions agree:

* ``colour/*``: mean and sd of raw RGB in [0, 1];
* ``stain/*``: mean Macenko haematoxylin and eosin concentration
  (:mod:`jaxmed.pathology.stain`, reference units);
* ``texture/lbp_k``: the uniform local-binary-pattern histogram (P = 8, R = 1)
  of the stain-normalised grey image;
* ``morphology/*``: log area (um^2), perimeter over that of the same-area
  disc, eccentricity (from the region label map);
* ``nuclei/*``: the fraction of pixels inside segmented nuclei
  (:mod:`jaxmed.pathology.nuclei`), nuclei per region and per mm^2, mean and
  sd of nuclear area (um^2), mean eccentricity and solidity. A nucleus
  belongs to the region under its centroid.

All of it is a sum over pixels or nuclei, so a slide is processed tile by
tile (:func:`tile_sums` on each tile's core, :func:`finish` once), and the
result equals the whole-image computation (:func:`region_features`) up to
nuclei cut by a tile seam; each tile is read with a margin so that LBP and
the segmentation see past the core.
"""

from __future__ import annotations

import numpy as np

from jaxmed.pathology import nuclei as nuclei_lib
from jaxmed.pathology import stain as stain_lib

LBP_BINS = 10  # uniform LBP with P = 8 neighbours has P + 2 codes
FEATURE_NAMES: tuple[str, ...] = (
    *(f"colour/mean_{c}" for c in "rgb"), *(f"colour/std_{c}" for c in "rgb"),
    "stain/haematoxylin_mean", "stain/eosin_mean",
    *(f"texture/lbp_{k}" for k in range(LBP_BINS)),
    "morphology/log_area_um2", "morphology/perimeter_ratio", "morphology/eccentricity",
    "nuclei/h_fraction", "nuclei/count", "nuclei/density_per_mm2", "nuclei/mean_area_um2", "nuclei/sd_area_um2",
    "nuclei/mean_eccentricity", "nuclei/mean_solidity",
)
# per-region sums: pixels, RGB, RGB^2, H, E, LBP histogram, nuclear pixels; per-nucleus sums
_PIXEL_SUMS = {"px": 1, "rgb": 3, "rgb2": 3, "h": 1, "e": 1, "lbp": LBP_BINS, "nuclear_px": 1}
_NUCLEUS_SUMS = ("count", "area", "area2", "ecc", "solidity")


def empty_sums(n: int) -> dict[str, np.ndarray]:
  """Zeroed sums for regions ``0..n`` (row 0 collects background and is dropped)."""
  out = {k: np.zeros((n + 1, d)) for k, d in _PIXEL_SUMS.items()}
  out.update({k: np.zeros((n + 1, 1)) for k in _NUCLEUS_SUMS})
  return out


def tile_sums(sums: dict, rgb: np.ndarray, labels: dict[str, np.ndarray], core: tuple[int, int, int, int], *,
              mpp: float, stains: stain_lib.Stains) -> None:
  """Adds one tile to ``sums[kind]`` for every label map in ``labels`` (in place).

  ``rgb [h, w, 3]`` uint8 is the tile with its margin at ``mpp`` um/px;
  ``labels[kind] [h, w]`` its region ids; only pixels and nucleus centroids
  inside ``core = (r0, r1, c0, c1)`` (tile coordinates) count.
  """
  from skimage import color, feature

  r0, r1, c0, c1 = core
  h, e = stain_lib.stain_concentrations(rgb, stains)
  normalised = stain_lib.normalise_stains(rgb, stains)
  lbp = feature.local_binary_pattern((color.rgb2gray(normalised) * 255).astype(np.uint8), 8, 1, method="uniform")
  nuc = nuclei_lib.segment_nuclei(h, mpp=mpp)
  table = nuclei_lib.nucleus_table(nuc, mpp=mpp)
  crop = (slice(r0, r1), slice(c0, c1))
  x = rgb[crop].reshape(-1, 3).astype(np.float64) / 255.0
  per_pixel = {"px": np.ones((len(x), 1)), "rgb": x, "rgb2": x ** 2, "h": h[crop].reshape(-1, 1),
               "e": e[crop].reshape(-1, 1), "lbp": np.eye(LBP_BINS)[lbp[crop].reshape(-1).astype(np.int64)],
               "nuclear_px": (nuc[crop] > 0).reshape(-1, 1).astype(np.float64)}
  cy, cx = (np.floor(table["centroid"][:, k]).astype(int) for k in (0, 1))
  inside = (cy >= r0) & (cy < r1) & (cx >= c0) & (cx < c1)
  per_nucleus = {"count": np.ones(inside.sum()), "area": table["area_um2"][inside],
                 "area2": table["area_um2"][inside] ** 2, "ecc": table["eccentricity"][inside],
                 "solidity": table["solidity"][inside]}
  for kind, lab in labels.items():
    s = sums[kind]
    flat = lab[crop].reshape(-1)
    for k, v in per_pixel.items():
      _add_rows(s[k], flat, v)
    owner = lab[cy[inside], cx[inside]]
    for k, v in per_nucleus.items():
      _add_rows(s[k], owner, v[:, None])


def _add_rows(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
  """``target[index[i]] += values[i]`` (bincount per column: much faster than ``np.add.at``)."""
  for j in range(target.shape[1]):
    target[:, j] += np.bincount(index, weights=values[:, j], minlength=target.shape[0])[:target.shape[0]]


def finish(sums: dict, label_map: np.ndarray, label_mpp: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Features ``[N, F]`` (float32, ``FEATURE_NAMES`` order) from the sums, with morphology from ``label_map``.

  Also returns ``{"area_um2": [N], "centroid_um": [N, 2] (row, col in um)}``,
  used for area-weighted pooling and for drawing graphs.
  """
  from skimage import measure

  n = int(label_map.max())
  if n == 0:
    return np.zeros((0, len(FEATURE_NAMES)), np.float32), {"area_um2": np.zeros(0), "centroid_um": np.zeros((0, 2))}
  s = {k: v[1:n + 1] for k, v in sums.items()}
  px = np.maximum(s["px"], 1.0)
  mean_rgb = s["rgb"] / px
  sd_rgb = np.sqrt(np.maximum(s["rgb2"] / px - mean_rgb ** 2, 0.0))
  props = measure.regionprops(label_map)
  area_um2 = np.asarray([p.area for p in props], np.float64) * label_mpp ** 2
  perimeter = np.asarray([p.perimeter for p in props]) * label_mpp
  perimeter_ratio = perimeter / (2 * np.sqrt(np.pi * area_um2))
  eccentricity = np.asarray([p.eccentricity for p in props])
  centroid = np.asarray([p.centroid for p in props]) * label_mpp
  count = s["count"][:, 0]
  nn = np.maximum(count, 1.0)
  mean_area = s["area"][:, 0] / nn
  sd_area = np.sqrt(np.maximum(s["area2"][:, 0] / nn - mean_area ** 2, 0.0))
  cols = [mean_rgb, sd_rgb, s["h"] / px, s["e"] / px, s["lbp"] / px,
          np.log(area_um2)[:, None], perimeter_ratio[:, None], eccentricity[:, None], s["nuclear_px"] / px,
          count[:, None], (count / area_um2 * 1e6)[:, None], mean_area[:, None], sd_area[:, None],
          (s["ecc"][:, 0] / nn)[:, None], (s["solidity"][:, 0] / nn)[:, None]]
  return np.concatenate(cols, 1).astype(np.float32), {"area_um2": area_um2, "centroid_um": centroid}


def region_features(rgb: np.ndarray, labels: np.ndarray, *, mpp: float, stains: stain_lib.Stains | None = None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Whole-image features of regions ``1..N`` of ``labels [H, W]`` over ``rgb [H, W, 3]`` at ``mpp`` um/px.

  ``stains`` defaults to a Macenko fit over the labelled pixels. The tiled
  path (:func:`jaxmed.pathology.slide_graph.slide_graphs`) gives the same
  numbers up to tile seams.
  """
  labels = np.asarray(labels)
  if stains is None:
    stains = stain_lib.macenko_stains(rgb, labels > 0)
  sums = {"k": empty_sums(int(labels.max()))}
  tile_sums(sums, rgb, {"k": labels}, (0, rgb.shape[0], 0, rgb.shape[1]), mpp=mpp, stains=stains)
  return finish(sums["k"], labels, mpp)
