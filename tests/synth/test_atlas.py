"""The synthetic atlas: seeded, diffeomorphic ground truth, labels consistent with the deformation."""

import jax.numpy as jnp
import numpy as np

from jaxmed import registration as R
from jaxmed.synth import NUM_LABELS, atlas_subjects, brain_atlas, registration_pairs


def test_seeded_and_deterministic():
  a = atlas_subjects(2, (32, 32), seed=3)
  b = atlas_subjects(2, (32, 32), seed=3)
  c = atlas_subjects(2, (32, 32), seed=4)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["images"], c["images"])


def test_ground_truth_is_diffeomorphic_and_explains_labels():
  d = atlas_subjects(3, (48, 48), seed=0)
  jac = R.jacobian_determinant(jnp.asarray(d["displacements"]))
  assert float(jnp.min(jac)) > 0
  warped = R.warp_labels(jnp.asarray(np.repeat(d["atlas"][None], 3, 0)), jnp.asarray(d["displacements"]))
  np.testing.assert_array_equal(np.asarray(warped), d["labels"])
  assert set(np.unique(d["labels"])) == set(range(NUM_LABELS))


def test_3d_atlas_and_pairs():
  atlas = brain_atlas((24, 24, 24))
  assert set(np.unique(atlas)) == set(range(NUM_LABELS))
  pairs = registration_pairs(5, 200, seed=0)
  assert pairs.shape == (200, 2) and np.all(pairs[:, 0] != pairs[:, 1]) and pairs.max() < 5
