"""From an assigned rib map to one record per rib: length, stump call and morphology features."""

from __future__ import annotations

import numpy as np

from jaxmed.io import spine_labels as L
from jaxmed.ribs.features import rib_features
from jaxmed.ribs.frame import corpus_centres_mm, vertebra_frame
from jaxmed.ribs.length import rib_length
from jaxmed.ribs.official_features import official_features


def corpus_centre_mm(vertebra_instance: np.ndarray, subregions: np.ndarray, vertebra: int, spacing) -> np.ndarray:
  """Centre of mass (mm, voxel index x spacing) of ``vertebra``'s corpus (labels 49 and 50)."""
  m = (vertebra_instance == vertebra) & np.isin(subregions, (L.CORPUS, L.CORPUS_BORDER))
  if not m.any():
    raise ValueError(f"corpus_centre_mm: vertebra {vertebra} has no corpus voxels (labels 49/50)")
  return np.argwhere(m).mean(0) * np.asarray(spacing, np.float64)


def measure_ribs(rib_instance: np.ndarray, rib_semantic: np.ndarray, vertebra_instance: np.ndarray,
                 subregions: np.ndarray, spacing, *, vertebrae=None, vertebra_frame_features: bool = True,
                 **length_kwargs) -> list[dict]:
  """Measures every assigned rib.

  Args:
    rib_instance: ``[P, I, R]`` rib labels (vertebra + 32), e.g. from
      :func:`jaxmed.ribs.assign_ribs`.
    rib_semantic: ``[P, I, R]`` 63 (left) / 64 (right).
    vertebra_instance, subregions: the vertebra masks (SPINEPS/TPTBox).
    spacing: ``(3,)`` mm.
    vertebrae: measure only the ribs of these vertebra indices (default all).
    vertebra_frame_features: express features, and place the start point,
      in the vertebra's own frame (:func:`jaxmed.ribs.vertebra_frame`);
      ``False``: in the array axes, as the official code.
    length_kwargs: passed to :func:`jaxmed.ribs.rib_length`.

  Returns:
    One dict per rib: ``vertebra``, ``left``, ``length`` (the
    :class:`~jaxmed.ribs.length.RibLength`), ``features`` (dict: ours and
    the official set, :mod:`jaxmed.ribs.official_features`), ``frame``.
  """
  records = []
  centres = corpus_centres_mm(vertebra_instance, subregions, spacing)
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
      if vertebra not in centres:
        raise ValueError(f"measure_ribs: vertebra {vertebra} has no corpus voxels (labels 49/50)")
      com = centres[vertebra]
      frame = (vertebra_frame(vertebra_instance, subregions, vertebra, spacing, centres=centres)[0]
               if vertebra_frame_features else None)
      res = rib_length(mask, spacing, com, frame=frame, **length_kwargs)
      own = np.where(vertebra_instance == vertebra, subregions, 0)
      feats = rib_features(mask, own, spacing, res.path_mm, left, length_mm=res.length_mm,
                           volume_mm3=res.volume_mm3, frame=frame)
      feats.update(official_features(mask, own, spacing, res.path_mm, left, frame))
      records.append({"vertebra": vertebra, "left": left, "length": res, "features": feats, "frame": frame})
  return records
