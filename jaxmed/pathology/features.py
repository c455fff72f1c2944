"""Interpretable, named node features of tissue regions: colour, stain, texture, morphology, nuclei.

Every feature has a name (``FEATURE_NAMES``) so attributions read as words.
Nuclear proxies use colour deconvolution (scikit-image ``rgb2hed``,
Ruifrok-Johnston H&E-DAB vectors): pixels whose haematoxylin density passes a
threshold (Otsu over the tissue by default) are nuclear; connected nuclear
blobs are counted per region (a blob belongs to the region under its
centroid).
"""

from __future__ import annotations

import numpy as np

LBP_BINS = 10  # uniform LBP with P = 8 neighbours has P + 2 codes
FEATURE_NAMES: tuple[str, ...] = (
    *(f"colour/mean_{c}" for c in "rgb"), *(f"colour/std_{c}" for c in "rgb"),
    "stain/haematoxylin_mean", "stain/eosin_mean",
    *(f"texture/lbp_{k}" for k in range(LBP_BINS)),
    "morphology/log_area", "morphology/perimeter_ratio", "morphology/eccentricity",
    "nuclei/h_fraction", "nuclei/count", "nuclei/density", "nuclei/mean_area",
)


def region_features(rgb: np.ndarray, labels: np.ndarray, *, h_threshold: float | None = None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Features ``[N, F]`` (float32, order ``FEATURE_NAMES``) of regions ``1..N`` of ``labels`` ``[H, W]``.

  Also returns ``{"area": [N] pixels, "centroid": [N, 2] (row, col)}``, used
  for area-weighted pooling and for drawing graphs. Colour is in [0, 1];
  ``nuclei/density`` is nuclei per 1000 pixels.
  """
  from skimage import color, feature, filters, measure

  labels = np.asarray(labels)
  n = int(labels.max())
  if n == 0:
    return np.zeros((0, len(FEATURE_NAMES)), np.float32), {"area": np.zeros(0), "centroid": np.zeros((0, 2))}
  flat = labels.ravel()
  area = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)

  def mean(values):
    return np.bincount(flat, weights=values.ravel(), minlength=n + 1)[1:] / area

  x = rgb.astype(np.float64) / 255.0
  means = [mean(x[..., c]) for c in range(3)]
  stds = [np.sqrt(np.maximum(mean(x[..., c] ** 2) - m ** 2, 0.0)) for c, m in enumerate(means)]
  hed = color.rgb2hed(rgb)
  h, e = hed[..., 0], hed[..., 1]
  lbp = feature.local_binary_pattern((color.rgb2gray(rgb) * 255).astype(np.uint8), 8, 1, method="uniform")
  hist = np.bincount(flat * LBP_BINS + lbp.ravel().astype(np.int64), minlength=(n + 1) * LBP_BINS)
  hist = hist.reshape(n + 1, LBP_BINS)[1:] / area[:, None]

  props = measure.regionprops(labels)
  perimeter = np.asarray([p.perimeter for p in props])
  eccentricity = np.asarray([p.eccentricity for p in props])
  centroid = np.asarray([p.centroid for p in props])
  # perimeter relative to a disc of the same area (1 for a disc, larger for ragged regions)
  perimeter_ratio = perimeter / (2 * np.sqrt(np.pi * area))

  tissue = labels > 0
  if h_threshold is None:
    h_threshold = filters.threshold_otsu(h[tissue]) if tissue.sum() > 1 else 0.0
  nuclear = (h > h_threshold) & tissue
  blobs = measure.label(nuclear, connectivity=1)
  counts, blob_area = np.zeros(n), np.zeros(n)
  if blobs.max():
    bprops = measure.regionprops(blobs)
    cy = np.clip(np.asarray([p.centroid[0] for p in bprops]).round().astype(int), 0, labels.shape[0] - 1)
    cx = np.clip(np.asarray([p.centroid[1] for p in bprops]).round().astype(int), 0, labels.shape[1] - 1)
    owner = labels[cy, cx]
    sizes = np.asarray([p.area for p in bprops], np.float64)
    counts = np.bincount(owner, minlength=n + 1)[1:].astype(np.float64)
    blob_area = np.bincount(owner, weights=sizes, minlength=n + 1)[1:] / np.maximum(counts, 1)
  feats = np.column_stack([*means, *stds, mean(h), mean(e), hist, np.log1p(area), perimeter_ratio, eccentricity,
                           mean(nuclear.astype(np.float64)), counts, 1000 * counts / area, blob_area])
  return feats.astype(np.float32), {"area": area, "centroid": centroid}
