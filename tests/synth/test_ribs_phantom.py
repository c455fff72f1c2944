"""The thoracolumbar rib phantom: labels, known centreline lengths, stump variants and FOV cuts."""

import numpy as np

from jaxmed.io import spine_labels as L
from jaxmed.synth import ribs as synth


def test_phantom_labels_and_rib_geometry():
  ph = synth.thoracolumbar_phantom(2.0, seed=1, stump={"left": True, "right": False})
  assert set(np.unique(ph["subregions"])) == {0, *range(41, 51)}
  assert set(np.unique(ph["vertebra_instance"])) == {0, 18, 19, 20}
  assert set(np.unique(ph["rib_instance"])) == {0, 18 + 32, 19 + 32}
  assert not (ph["rib_mask"] & (ph["subregions"] > 0)).any()
  assert ph["ct"][ph["rib_mask"]].mean() > 300 > ph["ct"][~ph["rib_mask"] & (ph["subregions"] == 0)].mean()
  lowest = {r["left"]: r for r in ph["ribs"] if r["vertebra"] == 19}
  assert lowest[True]["stump"] and lowest[True]["length_mm"] <= 35
  assert not lowest[False]["stump"] and lowest[False]["length_mm"] >= 75
  for r in ph["ribs"]:  # the centreline lies inside its voxelised tube
    idx = np.round(r["centreline"] / 2.0).astype(int)
    inside = ph["rib_mask"][tuple(idx.T)]
    assert inside.mean() > 0.9   # (rounding at the flat caps leaves a few end points out)
    side = ph["rib_semantic"][tuple(idx[len(idx) // 2])]
    assert side == (L.RIB_LEFT if r["left"] else L.RIB_RIGHT)
  # patient's left is low R index (P, I, R)
  assert lowest[True]["centreline"][-1, 2] < lowest[False]["centreline"][-1, 2]


def test_phantom_is_deterministic_and_fov_crop_cuts_ribs():
  a = synth.thoracolumbar_phantom(2.5, seed=3)
  b = synth.thoracolumbar_phantom(2.5, seed=3)
  assert np.array_equal(a["ct"], b["ct"])
  c = synth.crop_fov(a, 45.0)
  assert c["ct"].shape[2] < a["ct"].shape[2]
  for r in c["ribs"]:
    if r["cut"]:
      assert r["visible_length_mm"] < r["length_mm"]
      assert c["rib_mask"][:, :, [0, -1]].any()
  # the cropped grid keeps world positions: its voxel 0 maps to a voxel of the original grid
  ijk = np.linalg.solve(a["affine"], c["affine"] @ np.array([0.0, 0.0, 0.0, 1.0]))[:3]
  lo = int(round(ijk[2]))
  assert np.allclose(ijk, [0, 0, lo], atol=1e-6)
  assert np.array_equal(c["ct"], a["ct"][:, :, lo:lo + c["ct"].shape[2]])
