"""CLAM-style tissue segmentation of a slide thumbnail.

Following CLAM's ``segmentTissue`` defaults: the HSV saturation channel
(0-255) is median-blurred (``median=7``), thresholded at ``sthresh=8`` (or by
Otsu), closed morphologically (``close=4``), and connected tissue components
smaller than ``min_area`` pixels are dropped, as are holes smaller than
``min_hole`` pixels (filled).
"""

from __future__ import annotations

import numpy as np


def tissue_mask(rgb: np.ndarray, *, sthresh: float = 8, median: int = 7, otsu: bool = False, close: int = 4,
                min_area: int = 256, min_hole: int = 64) -> np.ndarray:
  """Boolean tissue mask ``[H, W]`` of an RGB ``[H, W, 3]`` uint8 image."""
  from skimage import color, filters, morphology

  rgb = np.asarray(rgb)
  if rgb.ndim != 3 or rgb.shape[-1] != 3:
    raise ValueError(f"tissue_mask: expected an RGB image [H, W, 3], got shape {rgb.shape}")
  sat = (color.rgb2hsv(rgb)[..., 1] * 255).astype(np.uint8)
  if median > 1:
    sat = filters.median(sat, np.ones((median, median), bool))
  thresh = filters.threshold_otsu(sat) if otsu else sthresh
  mask = sat > thresh
  if close > 0:
    mask = morphology.closing(mask, np.ones((close, close), bool))
  mask = morphology.remove_small_objects(mask, max_size=min_area - 1) if min_area > 1 else mask
  if min_hole > 1:
    mask = morphology.remove_small_holes(mask, max_size=min_hole - 1)
  return mask
