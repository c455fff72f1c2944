"""Rib-to-vertebra assignment by dominance, as the official algorithm (Moeller et al., 2025).

In the canonical ``("P", "I", "R")`` orientation:

1. the binary rib mask is split into 26-connected components;
2. for each rib-bearing vertebra (C7-L1) and side, the candidate region is
   the bounding box of that vertebra's arcus, costal process and superior
   articular process of the side, keeping its upper half along the
   inferior axis and extended ``lateral_margin_mm`` towards the side;
3. every component inside the region scores
   ``dominance = volume / max(1, gap)``, where ``gap`` (mm) is how far the
   component's box starts lateral of the arcus' box plus how far it starts
   above it (each clipped at 0);
4. candidates are taken in decreasing dominance: a component is assigned
   when neither it nor the vertebra side is taken yet;
5. the rib instance label is the vertebra index + 32, the semantic label
   63 (left) or 64 (right).

Volumes (mm^3) and gaps (mm) are physical here; the official code counts
voxels, which orders candidates the same on isotropic data.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jaxmed.io import spine_labels as L


def rib_components(rib_mask: np.ndarray) -> tuple[np.ndarray, int]:
  """26-connected components of a binary rib mask: ``(labels [P, I, R] int32, count)``."""
  labels, n = ndimage.label(np.asarray(rib_mask, bool), structure=np.ones((3, 3, 3), bool))
  return labels.astype(np.int32), int(n)


def _bbox(mask: np.ndarray):
  idx = np.argwhere(mask)
  return (idx.min(0), idx.max(0)) if len(idx) else None


def candidate_region(vertebra_mask: np.ndarray, subregions: np.ndarray, left: bool, spacing,
                     lateral_margin_mm: float = 10.0) -> tuple[slice, slice, slice] | None:
  """The crop one vertebra side's rib must start in (see the module docstring), or ``None``."""
  side = L.side_labels(left)
  region = vertebra_mask & np.isin(subregions, (L.ARCUS, side["costal"], side["sup_articular"]))
  box = _bbox(region)
  if box is None:
    return None
  lo, hi = box[0].copy(), box[1] + 1
  hi[1] = hi[1] - (hi[1] - lo[1]) // 2           # the upper half along the inferior axis
  margin = int(round(lateral_margin_mm / float(spacing[2])))
  if left:
    lo[2] = max(lo[2] - margin, 0)
  else:
    hi[2] = min(hi[2] + margin, vertebra_mask.shape[2])
  return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def dominance_gap_mm(component_box, arcus_box, left: bool, spacing) -> float:
  """Lateral plus superior gap (mm) from the arcus' box to a component's box; boxes are (min, max) indices."""
  (c_lo, c_hi), (a_lo, a_hi) = component_box, arcus_box
  lateral = (a_lo[2] - c_hi[2]) if left else (c_lo[2] - a_hi[2])
  superior = a_lo[1] - c_lo[1]
  return float(max(0, lateral) * spacing[2] + max(0, superior) * spacing[1])


def assign_ribs(rib_mask: np.ndarray, vertebra_instance: np.ndarray, subregions: np.ndarray, spacing, *,
                lateral_margin_mm: float = 10.0, vertebrae=L.RIB_VERTEBRAE, min_component_mm3: float = 0.0) -> dict:
  """Assigns rib components to vertebra sides.

  Args:
    rib_mask: ``[P, I, R]`` bool (or an already-labelled component map, int).
    vertebra_instance: ``[P, I, R]`` vertebra indices (SPINEPS/TPTBox).
    subregions: ``[P, I, R]`` subregion labels (41-50).
    spacing: ``(3,)`` mm.
    min_component_mm3: components smaller than this are dropped first (0,
      the official behaviour, keeps all). A predicted mask's small false
      positive fragments next to the arcus can otherwise out-dominate the
      rib itself, whose volume counts only inside the candidate region.

  Returns:
    ``instance`` (rib voxels: vertebra + 32), ``semantic`` (63/64),
    ``components`` (the component map), ``assignments``: one dict per
    assigned component with ``component``, ``vertebra``, ``left``,
    ``dominance``, ``volume_mm3``, ``gap_mm``; ``unassigned``: component ids.
  """
  spacing = np.asarray(spacing, np.float64)
  rib = np.asarray(rib_mask)
  comps, n = rib_components(rib > 0) if rib.dtype == bool or rib.max() <= 1 else (rib.astype(np.int32),
                                                                                   int(rib.max()))
  voxel_mm3 = float(np.prod(spacing))
  if min_component_mm3 > 0 and n:
    sizes = np.bincount(comps.ravel(), minlength=n + 1) * voxel_mm3
    small = np.flatnonzero(sizes < min_component_mm3)
    comps = np.where(np.isin(comps, small[small > 0]), 0, comps)
  inst = np.where(comps > 0, 0, vertebra_instance)   # ribs override the vertebra masks
  sub = np.where(comps > 0, 0, subregions)
  candidates = []
  for v in np.unique(inst):
    if v not in vertebrae:
      continue
    vmask = inst == v
    for left in (False, True):
      crop = candidate_region(vmask, sub, left, spacing, lateral_margin_mm)
      if crop is None:
        continue
      c_crop = comps[crop]
      arcus_box = _bbox((vmask & (sub == L.ARCUS))[crop]) or _bbox(vmask[crop])
      if arcus_box is None:
        continue
      for cid in np.unique(c_crop):
        if cid == 0:
          continue
        cm = c_crop == cid
        gap = dominance_gap_mm(_bbox(cm), arcus_box, left, spacing)
        volume = float(cm.sum()) * voxel_mm3
        candidates.append({"dominance": volume / max(1.0, gap), "vertebra": int(v), "component": int(cid),
                           "left": left, "volume_mm3": volume, "gap_mm": gap})
  candidates.sort(key=lambda c: -c["dominance"])
  taken_sides, taken_comps, assignments = set(), set(), []
  for c in candidates:
    key = (c["vertebra"], c["left"])
    if c["component"] in taken_comps or key in taken_sides:
      continue
    taken_comps.add(c["component"])
    taken_sides.add(key)
    assignments.append(c)
  instance = np.zeros(comps.shape, np.int32)
  semantic = np.zeros(comps.shape, np.int32)
  for a in assignments:
    m = comps == a["component"]
    instance[m] = L.rib_label(a["vertebra"])
    semantic[m] = L.RIB_LEFT if a["left"] else L.RIB_RIGHT
  return {"instance": instance, "semantic": semantic, "components": comps, "assignments": assignments,
          "unassigned": sorted(set(np.unique(comps[comps > 0]).tolist()) - taken_comps), "candidates": candidates}
