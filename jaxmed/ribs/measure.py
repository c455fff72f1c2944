"""From an assigned rib map to one record per rib: length, stump call and morphology features."""

from __future__ import annotations

import numpy as np

from jaxmed.io import spine_labels as L
from jaxmed.ribs.features import rib_features
from jaxmed.ribs.length import rib_length


def corpus_centre_mm(vertebra_instance: np.ndarray, subregions: np.ndarray, vertebra: int, spacing) -> np.ndarray:
  """Centre of mass (mm, voxel index x spacing) of ``vertebra``'s corpus (labels 49 and 50)."""
  m = (vertebra_instance == vertebra) & np.isin(subregions, (L.CORPUS, L.CORPUS_BORDER))
  if not m.any():
    raise ValueError(f"corpus_centre_mm: vertebra {vertebra} has no corpus voxels (labels 49/50)")
  return np.argwhere(m).mean(0) * np.asarray(spacing, np.float64)


def measure_ribs(rib_instance: np.ndarray, rib_semantic: np.ndarray, vertebra_instance: np.ndarray,
                 subregions: np.ndarray, spacing, *, vertebrae=None, **length_kwargs) -> list[dict]:
  """Measures every assigned rib.

  Args:
    rib_instance: ``[P, I, R]`` rib labels (vertebra + 32), e.g. from
      :func:`jaxmed.ribs.assign_ribs`.
    rib_semantic: ``[P, I, R]`` 63 (left) / 64 (right).
    vertebra_instance, subregions: the vertebra masks (SPINEPS/TPTBox).
    spacing: ``(3,)`` mm.
    vertebrae: measure only the ribs of these vertebra indices (default all).
    length_kwargs: passed to :func:`jaxmed.ribs.rib_length`.

  Returns:
    One dict per rib: ``vertebra``, ``left``, ``length`` (the
    :class:`~jaxmed.ribs.length.RibLength`), ``features`` (dict).
  """
  records = []
  for label in np.unique(rib_instance):
    if label == 0:
      continue
    vertebra = int(label) - L.RIB_OFFSET
    if vertebrae is not None and vertebra not in vertebrae:
      continue
    for side_label, left in ((L.RIB_LEFT, True), (L.RIB_RIGHT, False)):
      mask = (rib_instance == label) & (rib_semantic == side_label)
      if not mask.any():
        continue
      com = corpus_centre_mm(vertebra_instance, subregions, vertebra, spacing)
      res = rib_length(mask, spacing, com, **length_kwargs)
      own = np.where(vertebra_instance == vertebra, subregions, 0)
      feats = rib_features(mask, own, spacing, res.path_mm, left, length_mm=res.length_mm,
                           volume_mm3=res.volume_mm3)
      records.append({"vertebra": vertebra, "left": left, "length": res, "features": feats})
  return records
