"""The ribs experiment's tiny preset end to end: results keys, NIfTI outputs, CSV, figures, resume."""

import csv
import math
import os

import nibabel as nib
import numpy as np

from experiments import ribs as ribs_experiment
from experiments.ribs import config as ribs_config
from experiments.ribs import train as ribs_train


def test_ribs_tiny_end_to_end(tmp_path):
  config = ribs_config.get_config("tiny")
  results = ribs_train.train_and_evaluate(config, str(tmp_path))
  for k in ribs_experiment.HEADLINE + ("length/num_ribs", "f1/stump/full_view/length_rule",
                                       "f1/stump/partial_view/gbm"):
    assert k in results, k
  assert 0.0 <= results["dice/rib"] <= 1.0 and 0.0 <= results["length/success_rate"] <= 1.0
  assert results["length/num_ribs"] == 4 * config.data.num_test
  assert any(k.startswith("features/stump/") for k in results)
  ct = nib.load(tmp_path / "test_0_ct.nii.gz")
  labels = nib.load(tmp_path / "test_0_rib_instances.nii.gz")
  assert np.allclose(ct.affine, labels.affine) and ct.shape == labels.shape
  assert nib.aff2axcodes(ct.affine) == ("P", "I", "R")
  assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 18 + 32, 19 + 32}
  rows = list(csv.DictReader(open(tmp_path / "ribs.csv")))
  assert all(r["view"] in ("full", "partial") for r in rows)
  for f in ("config.json", "results.json", "montage.png", "features.png", "segmentation"):
    assert os.path.exists(tmp_path / f), f
  # a rerun resumes from the last checkpoint: the same model, so the same segmentation Dice
  again = ribs_train.train_and_evaluate(config, str(tmp_path))
  assert math.isclose(again["dice/rib"], results["dice/rib"], rel_tol=1e-6)
  assert "| logistic | full_view |" in ribs_experiment.results_table(results)
