"""Rib morphology features (Moeller et al., 2025), in mm with documented signs.

Directions are expressed in a side-symmetric frame ``(post, inf, lat)``:

* ``post`` > 0 towards posterior (array axis 0 of the ``P, I, R`` frame);
* ``inf`` > 0 towards inferior (axis 1);
* ``lat`` > 0 away from the midline: axis 2 for a right rib, minus axis 2
  for a left rib, so left and right ribs share one feature space.

Features of one rib (its measured path starts at the articulation):

* ``articulation/<part>/{closest,com}_{dist,post,inf,lat}``: the vector
  from the rib's start point to the closest voxel (``closest``) and to the
  centre of mass (``com``) of each vertebra part: ``arcus``, ``spinosus``,
  the same side's ``costal``, ``sup_articular`` and ``inf_articular``
  processes, and the ``corpus`` (49 and 50). Positive ``post`` means the
  part lies posterior of the articulation: a rib that articulates more
  posteriorly has a more negative ``corpus/com_post``.
* ``thickness/area_mm2`` (volume / length: the mean cross-section) and
  ``thickness/radius_mm`` (of the circle of that area).
* ``first_cm/{post,inf,lat}``: the unit direction from the start to the
  point 10 mm along the path; more downward means larger ``inf``.
* ``bbox/{post,inf,lat}_{min,max}``: the rib mask's extent relative to the
  start point; ``bbox/*_extent`` = max - min.
* ``length_mm``.

:data:`LOCAL_FEATURES` are the ones defined near the articulation, which a
partially visible rib still has: the classifier uses them.
"""

from __future__ import annotations

import numpy as np

from jaxmed.io import spine_labels as L

PARTS = ("arcus", "spinosus", "costal", "sup_articular", "inf_articular", "corpus")
AXES = ("post", "inf", "lat")


def side_frame(vectors: np.ndarray, left: bool) -> np.ndarray:
  """``[..., 3]`` P, I, R mm -> ``(post, inf, lat)``: the R component flips for a left rib."""
  v = np.array(vectors, np.float64, copy=True)
  if left:
    v[..., 2] = -v[..., 2]
  return v


def part_labels(part: str, left: bool) -> tuple[int, ...]:
  side = L.side_labels(left)
  return {"arcus": (L.ARCUS,), "spinosus": (L.SPINOSUS,), "costal": (side["costal"],),
          "sup_articular": (side["sup_articular"],), "inf_articular": (side["inf_articular"],),
          "corpus": (L.CORPUS, L.CORPUS_BORDER)}[part]


def point_along(path: np.ndarray, distance_mm: float) -> np.ndarray:
  """The point ``distance_mm`` along a polyline ``[K, 3]`` (its end if shorter)."""
  seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
  cum = np.concatenate([[0.0], np.cumsum(seg)])
  if len(path) < 2 or distance_mm >= cum[-1]:
    return path[-1]
  k = int(np.searchsorted(cum, distance_mm, side="right") - 1)
  t = (distance_mm - cum[k]) / max(seg[k], 1e-12)
  return path[k] + t * (path[k + 1] - path[k])


def rib_features(rib_mask: np.ndarray, vertebra_subregions: np.ndarray, spacing, path_mm: np.ndarray,
                 left: bool, *, length_mm: float | None = None, volume_mm3: float | None = None) -> dict[str, float]:
  """The features of one rib (module docstring).

  Args:
    rib_mask: ``[P, I, R]`` bool, the rib.
    vertebra_subregions: ``[P, I, R]`` subregion labels of its vertebra only
      (other vertebrae zeroed).
    spacing: ``(3,)`` mm.
    path_mm: ``[K, 3]`` the measured path (:func:`jaxmed.ribs.rib_length`),
      mm in the voxel-index frame.
    left: the rib's side.
    length_mm, volume_mm3: from the length measurement (default: the path
      length and the mask's voxel volume).
  """
  spacing = np.asarray(spacing, np.float64)
  start = path_mm[0]
  length = float(np.linalg.norm(np.diff(path_mm, axis=0), axis=1).sum()) if length_mm is None else length_mm
  rib_pts = np.argwhere(rib_mask) * spacing
  volume = float(len(rib_pts) * np.prod(spacing)) if volume_mm3 is None else volume_mm3
  out: dict[str, float] = {"length_mm": length}
  for part in PARTS:
    pts = np.argwhere(np.isin(vertebra_subregions, part_labels(part, left))) * spacing
    for kind in ("closest", "com"):
      if len(pts) == 0:
        vec = np.full(3, np.nan)
      elif kind == "closest":
        vec = pts[np.argmin(np.linalg.norm(pts - start, axis=1))] - start
      else:
        vec = pts.mean(0) - start
      vec = side_frame(vec, left)
      out[f"articulation/{part}/{kind}_dist"] = float(np.linalg.norm(vec))
      for a, val in zip(AXES, vec):
        out[f"articulation/{part}/{kind}_{a}"] = float(val)
  area = volume / max(length, 1e-6)
  out["thickness/area_mm2"] = area
  out["thickness/radius_mm"] = float(np.sqrt(area / np.pi))
  d = point_along(path_mm, 10.0) - start
  d = side_frame(d / max(np.linalg.norm(d), 1e-12), left)
  out.update({f"first_cm/{a}": float(v) for a, v in zip(AXES, d)})
  rel = side_frame(rib_pts - start, left)
  for k, a in enumerate(AXES):
    lo, hi = float(rel[:, k].min()), float(rel[:, k].max())
    out[f"bbox/{a}_min"], out[f"bbox/{a}_max"], out[f"bbox/{a}_extent"] = lo, hi, hi - lo
  return out


LOCAL_FEATURES = tuple([f"articulation/{p}/{k}_{c}" for p in PARTS for k in ("closest", "com")
                        for c in ("dist",) + AXES] + ["thickness/area_mm2", "thickness/radius_mm"]
                       + [f"first_cm/{a}" for a in AXES])
