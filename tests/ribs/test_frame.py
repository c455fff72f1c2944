"""The vertebra frame and the features measured in it do not turn with a rotated CT (20 degrees)."""

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from jaxmed.ribs import OFFICIAL_FEATURES, measure_ribs, vertebra_frame
from jaxmed.synth import ribs as synth

KEYS = ("rib_instance", "rib_semantic", "vertebra_instance", "subregions")
PAD = 30


def _rotate(vol, q):
  """The padded label volume turned by ``q`` about the grid centre (nearest neighbour, as a rescan would be)."""
  v = np.pad(vol, PAD)
  c = (np.array(v.shape) - 1) / 2
  return ndimage.affine_transform(v, q.T, offset=c - q.T @ c, order=0)


def _angle(f, g, prefix):
  a = np.array([f[prefix + x] for x in ("post", "inf", "lat")])
  b = np.array([g[prefix + x] for x in ("post", "inf", "lat")])
  return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_features_are_invariant_to_a_20_degree_rotation_of_the_ct():
  """At 0.75 mm. Resampling a mask by nearest neighbour moves its voxels by up to 0.4 mm, and the start point is a
  voxel (the official rule snaps it to the rib), so it can jump by a voxel: the stable directions stay within 2 deg
  at the median and 4 deg at worst (measured 0.3-3.7 deg here), while in the scanner's axes they turn by > 5 deg."""
  ph = synth.thoracolumbar_phantom(0.75, seed=3, fov_jitter_mm=0.0, with_ct=False)
  q = Rotation.from_rotvec(np.deg2rad(20.0) * np.ones(3) / np.sqrt(3)).as_matrix()
  a = [np.pad(ph[k], PAD) for k in KEYS]
  b = [_rotate(ph[k], q) for k in KEYS]
  for v in (18, 19, 20):   # the frame turns with the CT: frame_b = frame_a q^T
    fa, fb = vertebra_frame(a[2], a[3], v, ph["spacing"])[0], vertebra_frame(b[2], b[3], v, ph["spacing"])[0]
    e = fb @ q @ fa.T
    assert np.degrees(np.arccos(np.clip((np.trace(e) - 1) / 2, -1, 1))) < 0.5
  low = (synth.RIB_VERTEBRAE[-1],)
  ra, rb = measure_ribs(*a, ph["spacing"], vertebrae=low), measure_ribs(*b, ph["spacing"], vertebrae=low)
  sa, sb = (measure_ribs(*v, ph["spacing"], vertebrae=low, vertebra_frame_features=False) for v in (a, b))
  assert len(ra) == len(rb) == 2
  # stable directions: the first centimetre and the start -> centre-of-mass vectors of every official subregion.
  # The closest-voxel vectors are argmins over voxels: a one-voxel jump turns a 5 mm vector by ~11 degrees,
  # so they are not held to 2 degrees.
  prefixes = ["first_cm/"] + sorted({n.rsplit("_", 1)[0] + "_" for n in OFFICIAL_FEATURES if "start_to_com" in n})
  angles, scanner = [], []
  for x, y, u, w in zip(ra, rb, sa, sb):
    assert (x["vertebra"], x["left"]) == (y["vertebra"], y["left"])
    angles += [_angle(x["features"], y["features"], p) for p in prefixes]
    vol_a, vol_b = (r["features"]["official/thickness/volume_first_cm_mm3"] for r in (x, y))
    assert abs(vol_a - vol_b) < 0.1 * vol_a
    scanner.append(_angle(u["features"], w["features"], "first_cm/"))
  assert np.median(angles) < 2.0 and max(angles) < 4.0, np.round(angles, 2)
  assert min(scanner) > 5.0   # control: in the scanner's axes the same features turn with the CT
