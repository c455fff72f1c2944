"""Rib-to-vertebra assignment: dominance picks the larger, closer component; nothing is assigned twice."""

import numpy as np

from jaxmed.io import spine_labels as L
from jaxmed.ribs import assign_ribs
from jaxmed.synth import ribs as synth


def _fake_vertebra(inst, sub, vid, i0):
  """A vertebra at rows i0.. of a [P=30, I, R=60] grid: arcus in the middle, right costal process at R 36-40."""
  inst[10:20, i0:i0 + 10, 24:41] = vid
  sub[10:20, i0:i0 + 10, 24:36] = L.ARCUS
  sub[10:20, i0:i0 + 10, 36:41] = L.COSTAL_RIGHT


def test_larger_closer_component_wins_and_no_component_is_assigned_twice():
  shape = (30, 40, 60)
  inst, sub = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
  _fake_vertebra(inst, sub, 18, 2)
  _fake_vertebra(inst, sub, 19, 20)
  rib = np.zeros(shape, bool)
  rib[12:16, 21:24, 42:52] = True     # big, 2 mm lateral of vertebra 19's arcus: its rib
  rib[18:20, 21:23, 46:50] = True     # small, 6 mm lateral: loses vertebra 19 to the big one
  rib[12:18, 3:6, 42:52] = True       # vertebra 18's rib
  out = assign_ribs(rib, inst, sub, (1.0, 1.0, 1.0))
  by_comp = {a["component"]: a for a in out["assignments"]}
  comps = out["components"]
  big, small, upper = comps[12, 21, 42], comps[18, 21, 46], comps[12, 3, 42]
  assert by_comp[big]["vertebra"] == 19 and not by_comp[big]["left"]
  assert by_comp[upper]["vertebra"] == 18
  assert small in out["unassigned"]
  assert len(by_comp) == len(out["assignments"])                 # each component once
  keys = [(a["vertebra"], a["left"]) for a in out["assignments"]]
  assert len(keys) == len(set(keys))                              # each vertebra side once
  assert set(np.unique(out["instance"])) == {0, 18 + 32, 19 + 32}
  assert (out["semantic"][comps == big] == L.RIB_RIGHT).all()
  # the small component, when alone, is assigned to vertebra 19
  alone = np.zeros(shape, bool)
  alone[18:20, 21:23, 46:50] = True
  only = assign_ribs(alone, inst, sub, (1.0, 1.0, 1.0))["assignments"]
  assert [a["vertebra"] for a in only] == [19]
  # a fragment below min_component_mm3 is dropped before scoring: the big component still wins, the
  # fragment is neither assigned nor listed
  dropped = assign_ribs(rib, inst, sub, (1.0, 1.0, 1.0), min_component_mm3=50.0)
  assert {a["vertebra"] for a in dropped["assignments"]} == {18, 19}
  assert small not in dropped["unassigned"] and not (dropped["components"] == small).any()


def test_phantom_ribs_get_their_vertebra_and_side():
  ph = synth.thoracolumbar_phantom(2.0, seed=4)
  out = assign_ribs(ph["rib_mask"], ph["vertebra_instance"], ph["subregions"], ph["spacing"])
  m = ph["rib_mask"]
  assert (out["instance"][m] == ph["rib_instance"][m]).all()
  assert (out["semantic"][m] == ph["rib_semantic"][m]).all()
  assert not out["unassigned"]
