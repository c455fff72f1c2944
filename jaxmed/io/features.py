"""Features from a user's own backbone, as one ``.npz`` file, for probes on frozen features (LSI and the like).

The file holds:

* ``features`` ``[N, D]``: finite floats (a backbone's penultimate activations, one row per sample);
* ``labels`` ``[N]``: integer class indices ``0 .. C-1`` (every class from 0 to the largest label counts);
* ``split`` ``[N]`` (optional): strings, ``"train"`` for the samples the probe is fitted on (the ones scored)
  and anything else (``"test"``, ``"val"``) for held-out samples. Without it, every sample is ``"train"``.

Any other problem (a missing array, a wrong shape, NaN, a negative label, a split with no ``"train"``) raises
:class:`FeaturesError` naming the file, the array and what was expected.
"""

from __future__ import annotations

import os

import numpy as np


class FeaturesError(ValueError):
  """A features file that does not match the layout above."""


def load_features_npz(path: str) -> dict[str, np.ndarray]:
  """``{"features" [N, D] float64, "labels" [N] int32, "split" [N] str, "num_classes": int}`` from ``path``."""
  def fail(field, msg):
    raise FeaturesError(f"{path}: array {field!r}: {msg}")

  if not os.path.exists(path):
    raise FeaturesError(f"{path}: file not found (expected an .npz with arrays 'features', 'labels', "
                        "optional 'split')")
  try:
    data = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise FeaturesError(f"{path}: not a readable .npz without pickles ({e})") from e
  for field in ("features", "labels"):
    if field not in data.files:
      fail(field, f"missing; the file has {sorted(data.files)}")
  x, y = data["features"], data["labels"]
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    fail("features", f"expected a non-empty [N, D] array, got shape {x.shape}")
  if not np.issubdtype(x.dtype, np.number):
    fail("features", f"expected numbers, got dtype {x.dtype}")
  if not np.all(np.isfinite(x)):
    bad = np.argwhere(~np.isfinite(x))[0]
    fail("features", f"expected finite values; row {bad[0]}, column {bad[1]} is {x[tuple(bad)]}")
  if y.shape != (x.shape[0],):
    fail("labels", f"expected shape [N] = ({x.shape[0]},) to match 'features', got {y.shape}")
  if not np.issubdtype(y.dtype, np.integer):
    if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
      fail("labels", f"expected integer class indices, got dtype {y.dtype}")
  if y.min() < 0:
    fail("labels", f"expected class indices >= 0; row {int(np.argmin(y))} is {y.min()}")
  split = np.full(x.shape[0], "train")
  if "split" in data.files:
    split = data["split"]
    if split.shape != (x.shape[0],) or split.dtype.kind not in "US":
      fail("split", f"expected [N] = ({x.shape[0]},) strings, got shape {split.shape} dtype {split.dtype}")
    split = split.astype(str)
    if not np.any(split == "train"):
      fail("split", f"expected some 'train' rows (the probe's training set); values are {sorted(set(split))}")
  y = y.astype(np.int64)
  num_classes = int(y.max()) + 1
  if num_classes < 2:
    fail("labels", "expected at least 2 classes")
  return {"features": x.astype(np.float64), "labels": y.astype(np.int32), "split": split,
          "num_classes": num_classes}
