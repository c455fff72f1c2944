"""Feature sign conventions on phantoms of known geometry, and left/right mirror symmetry."""

import numpy as np

from jaxmed.io import spine_labels as L
from jaxmed.ribs import measure_ribs, point_along, rib_features
from jaxmed.synth import ribs as synth


def _straight_rib(direction, left):
  """A 40 mm straight tube from (30, 30, 40) mm along ``direction`` (P, I, R) and a corpus block medial of it."""
  d = np.asarray(direction, float) / np.linalg.norm(direction)
  line = np.array([30.0, 30.0, 40.0]) + np.arange(0, 40.25, 0.25)[:, None] * d
  shape = (80, 80, 80)
  mask = synth._tube(shape, 1.0, line, 3.0)[0]
  sub = np.zeros(shape, np.int32)
  medial = 1 if left else -1                     # the midline is at +R for a left rib
  sub[34:40, 26:34, 40 + medial * 12 - 4:40 + medial * 12 + 4] = L.CORPUS   # anterior-medial, level
  return mask, sub, line


def test_signs_of_the_first_cm_direction_and_articulation_vectors():
  for left in (False, True):
    lat = -1.0 if left else 1.0
    mask, sub, line = _straight_rib((0.0, 0.5, lat), left)   # lateral and downward
    f = rib_features(mask, sub, (1.0,) * 3, line[[0, -1]], left)
    assert f["first_cm/lat"] > 0.85 and f["first_cm/inf"] > 0.4 and abs(f["first_cm/post"]) < 0.05
    assert f["articulation/corpus/com_post"] > 0        # the corpus block lies posterior (+P) of the start
    assert f["articulation/corpus/com_lat"] < 0         # ... and medial
    assert f["bbox/lat_max"] > 30 and f["bbox/lat_min"] > -5
    assert abs(f["thickness/radius_mm"] - 3.0) < 0.5


def test_left_and_right_ribs_of_a_symmetric_phantom_share_features():
  ph = synth.thoracolumbar_phantom(1.5, seed=0, stump={"left": True, "right": True}, fov_jitter_mm=0.0)
  recs = measure_ribs(ph["rib_instance"], ph["rib_semantic"], ph["vertebra_instance"], ph["subregions"],
                      ph["spacing"])
  assert len(recs) == 4
  # stumps articulate more posteriorly, are thinner and point more downwards than the full T11 ribs
  t11 = [r["features"] for r in recs if r["vertebra"] == 18]
  t12 = [r["features"] for r in recs if r["vertebra"] == 19]
  for s, f in zip(t12, t11):
    assert s["articulation/corpus/com_post"] < f["articulation/corpus/com_post"]
    assert s["thickness/area_mm2"] < f["thickness/area_mm2"]
    assert s["first_cm/inf"] > f["first_cm/inf"]
    assert s["length_mm"] <= 38 and f["length_mm"] > 80


def test_point_along_a_polyline():
  path = np.array([[0.0, 0, 0], [3, 4, 0], [3, 4, 10]])
  assert np.allclose(point_along(path, 2.5), [1.5, 2.0, 0.0])
  assert np.allclose(point_along(path, 10.0), [3, 4, 5])
  assert np.allclose(point_along(path, 100.0), [3, 4, 10])
