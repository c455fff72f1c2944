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


def test_phantom_rib_features_track_the_known_geometry():
  """Thickness, first-cm descent and articulation depth follow each phantom rib's drawn parameters.

  The start point is the official one (nearest the corpus, then the sagittal centre of mass), which sits
  1.5-3.5 mm from the centreline's end on these flat-capped tubes; that biases the first-cm descent low and
  the articulation depth by ~2 mm, the same for every rib, so the features rank the ribs as the truth does.
  """
  from scipy.stats import spearmanr
  measured, true = [], []
  for seed in (0, 5, 7):
    ph = synth.thoracolumbar_phantom(1.0, seed=seed, fov_jitter_mm=0.0)
    recs = measure_ribs(ph["rib_instance"], ph["rib_semantic"], ph["vertebra_instance"], ph["subregions"],
                        ph["spacing"])
    truth = {(r["vertebra"], r["left"]): r for r in ph["ribs"]}
    assert len(recs) == 4
    for rec in recs:
      t, f = truth[(rec["vertebra"], rec["left"])], rec["features"]
      slope = t["params"]["slope"]
      depth = t["params"]["articulation_mm"]   # start posterior of the corpus centre (mm)
      assert abs(f["thickness/radius_mm"] - t["radius_mm"]) < 0.6
      assert -0.2 < f["first_cm/inf"] - slope / np.sqrt(1 + slope ** 2) < 0.05
      assert abs(f["articulation/corpus/com_post"] + depth) < 3.0
      measured.append([f["thickness/radius_mm"], f["first_cm/inf"], -f["articulation/corpus/com_post"]])
      true.append([t["radius_mm"], slope, depth])
  measured, true = np.array(measured), np.array(true)
  for k in range(3):
    assert spearmanr(measured[:, k], true[:, k]).statistic > 0.7, k


def test_point_along_a_polyline():
  path = np.array([[0.0, 0, 0], [3, 4, 0], [3, 4, 10]])
  assert np.allclose(point_along(path, 2.5), [1.5, 2.0, 0.0])
  assert np.allclose(point_along(path, 10.0), [3, 4, 5])
  assert np.allclose(point_along(path, 100.0), [3, 4, 10])
