"""Rib morphology features (Moeller et al., 2025), in mm with documented signs.

Directions are expressed in a side-symmetric frame ``(post, inf, lat)``:

* ``post`` > 0 towards posterior, ``inf`` > 0 towards inferior;
* ``lat`` > 0 away from the midline: towards the right for a right rib, to
  the left for a left rib, so left and right ribs share one feature space.

With ``frame`` (:func:`jaxmed.ribs.vertebra_frame`, what
:func:`jaxmed.ribs.measure_ribs` passes) the three axes are the vertebra's
own posterior, inferior and right directions, so a rotated patient or a
rotated vertebra does not change the features; without it they are the
scanner's ``P, I, R`` array axes.

This is our feature set; the official one (Hendrik-code/rib-segmentation,
``rib_features/calc_rib_features.py``) is :mod:`jaxmed.ribs.official_features`.

Features of one rib (its measured path starts at the articulation):

* ``articulation/<part>/{closest,com}_{dist,post,inf,lat}``: the vector
  from the rib's start point to the closest voxel (``closest``) and to the
  centre of mass (``com``) of each vertebra part: ``arcus``, ``spinosus``,
  the same side's ``costal``, ``sup_articular`` and ``inf_articular``
  processes, and the ``corpus`` (49 and 50). Positive ``post`` means the
  part lies posterior of the articulation: a rib that articulates more
  posteriorly has a more negative ``corpus/com_post``.
* ``thickness/area_mm2`` (volume / length: the mean cross-section),
  ``thickness/radius_mm`` (of the circle of that area) and
  ``thickness/volume_first_cm_mm3``: the rib volume along the first 10 mm of
  the path (voxels whose nearest path point lies within 10 mm of the start,
  the head behind the start included); the paper's "thickness" (260.6 +-
  103.4 for stumps vs 563.6 +- 127.1) has this scale, pi r^2 x 10 mm.
* ``first_cm/{post,inf,lat}``: the unit direction of the rib's first
  centimetre: from the centroid of its cross-section at the start to the
  centroid of its cross-section 10 mm along the path (rib voxels whose
  nearest path point lies within 3 mm of there); steadier than the direction
  to one path point, which moves with the path's 7.5 mm steps. More downward
  means larger ``inf``.
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


def to_side_frame(vectors: np.ndarray, left: bool, frame: np.ndarray | None = None) -> np.ndarray:
  """``[..., 3]`` P, I, R mm -> ``(post, inf, lat)`` in ``frame`` (rows post, inf, right; default the array axes)."""
  v = np.asarray(vectors, np.float64)
  return side_frame(v if frame is None else v @ np.asarray(frame, np.float64).T, left)


def arc_length_of_voxels(points_mm: np.ndarray, path_mm: np.ndarray, step_mm: float = 0.25) -> np.ndarray:
  """``[N]`` the arc length (mm from the path's start) of each point's nearest point on the polyline."""
  from scipy.spatial import cKDTree
  cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path_mm, axis=0), axis=1))])
  s = np.arange(0.0, cum[-1] + step_mm, step_mm) if cum[-1] > 0 else np.zeros(1)
  dense = np.stack([np.interp(s, cum, path_mm[:, k]) for k in range(3)], -1) if cum[-1] > 0 else path_mm[:1]
  return s[cKDTree(dense).query(points_mm)[1]]


def first_cm_volume(rib_pts_mm: np.ndarray, path_mm: np.ndarray, spacing, distance_mm: float = 10.0) -> float:
  """The volume (mm^3) of the rib voxels ``rib_pts_mm [N, 3]`` along the first ``distance_mm`` of the path."""
  arc = arc_length_of_voxels(rib_pts_mm, path_mm)
  return float((arc <= distance_mm).sum() * np.prod(np.asarray(spacing, np.float64)))


def first_cm_direction(rib_pts_mm: np.ndarray, path_mm: np.ndarray, distance_mm: float = 10.0,
                       band_mm: float = 3.0) -> np.ndarray:
  """``(3,)`` unit direction from the centroid of the rib's cross-section at the start to the centroid of its
  cross-section ``distance_mm`` along the path (voxels whose nearest path point lies within ``band_mm``)."""
  arc = arc_length_of_voxels(rib_pts_mm, path_mm)
  near, far = rib_pts_mm[arc <= band_mm], rib_pts_mm[np.abs(arc - distance_mm) <= band_mm]
  d = (far.mean(0) if len(far) else point_along(path_mm, distance_mm)) - (near.mean(0) if len(near) else path_mm[0])
  return d / max(np.linalg.norm(d), 1e-12)


def rib_features(rib_mask: np.ndarray, vertebra_subregions: np.ndarray, spacing, path_mm: np.ndarray,
                 left: bool, *, length_mm: float | None = None, volume_mm3: float | None = None,
                 frame: np.ndarray | None = None) -> dict[str, float]:
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
    frame: ``[3, 3]`` the vertebra frame (rows posterior, inferior, right);
      default the array axes.
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
      vec = to_side_frame(vec, left, frame)
      out[f"articulation/{part}/{kind}_dist"] = float(np.linalg.norm(vec))
      for a, val in zip(AXES, vec):
        out[f"articulation/{part}/{kind}_{a}"] = float(val)
  area = volume / max(length, 1e-6)
  out["thickness/area_mm2"] = area
  out["thickness/radius_mm"] = float(np.sqrt(area / np.pi))
  out["thickness/volume_first_cm_mm3"] = first_cm_volume(rib_pts, path_mm, spacing)
  d = to_side_frame(first_cm_direction(rib_pts, path_mm), left, frame)
  out.update({f"first_cm/{a}": float(v) for a, v in zip(AXES, d)})
  rel = to_side_frame(rib_pts - start, left, frame)
  for k, a in enumerate(AXES):
    lo, hi = float(rel[:, k].min()), float(rel[:, k].max())
    out[f"bbox/{a}_min"], out[f"bbox/{a}_max"], out[f"bbox/{a}_extent"] = lo, hi, hi - lo
  return out


LOCAL_FEATURES = tuple([f"articulation/{p}/{k}_{c}" for p in PARTS for k in ("closest", "com")
                        for c in ("dist",) + AXES]
                       + ["thickness/area_mm2", "thickness/radius_mm", "thickness/volume_first_cm_mm3"]
                       + [f"first_cm/{a}" for a in AXES])
