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


def test_ribs_on_a_user_nifti_ct_in_its_own_orientation(tmp_path):
  """A phantom written as LAS NIfTI files goes through the user path; outputs keep the CT's grid."""
  from jaxmed.io.nifti import reorient, save_nifti
  from jaxmed.synth import ribs as phantoms

  config = ribs_config.get_config("tiny")
  ph = phantoms.thoracolumbar_phantom(config.data.spacing, seed=9)
  paths = {}
  for key, name in (("ct", "ct"), ("vertebra_instance", "vertebrae"), ("subregions", "subregions")):
    data, aff = reorient(ph[key], ph["affine"], ("L", "A", "S"))
    paths[name] = save_nifti(str(tmp_path / f"{name}.nii.gz"), data, aff)
  config.data.update(paths)
  config.model_dir = str(tmp_path / "model")
  out = tmp_path / "out"
  results = ribs_train.train_and_evaluate(config, str(out))
  assert results["num_ribs"] >= 0
  ct = nib.load(paths["ct"])
  inst = nib.load(out / "rib_instance.nii.gz")
  assert inst.shape == ct.shape and np.allclose(inst.affine, ct.affine)
  assert os.path.exists(out / "ribs.csv") and os.path.isdir(tmp_path / "model" / "segmentation")
