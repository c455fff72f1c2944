"""The synthetic organ-and-lesion set: seeded, balanced, labels consistent, difficulty controls separability."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from jaxmed.synth import LESION_CLASS_NAMES, lesion_images


def test_seeded_labels_consistent_and_balanced():
  a, b = lesion_images(400, 16, difficulty=0.5, seed=1), lesion_images(400, 16, difficulty=0.5, seed=1)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert a["images"].shape == (400, 16, 16) and a["images"].dtype == np.float32
  np.testing.assert_array_equal(a["labels"], 2 * a["organ"] + a["lesion"])
  counts = np.bincount(a["labels"], minlength=len(LESION_CLASS_NAMES))
  assert counts.min() > 0.5 * 400 / len(LESION_CLASS_NAMES)


def test_difficulty_lowers_separability():
  """A random forest on pixels separates the 8 classes well at difficulty 0 and near chance at 1."""
  accs = []
  for t in (0.0, 1.0):
    train, test = lesion_images(1000, 16, difficulty=t, seed=0), lesion_images(400, 16, difficulty=t, seed=1)
    forest = RandomForestClassifier(100, random_state=0).fit(train["images"].reshape(1000, -1), train["labels"])
    accs.append(forest.score(test["images"].reshape(400, -1), test["labels"]))
  assert accs[0] > 0.8 and accs[0] > accs[1] + 0.3, accs


def test_rejects_bad_difficulty():
  with pytest.raises(ValueError, match="difficulty"):
    lesion_images(4, difficulty=1.5)
