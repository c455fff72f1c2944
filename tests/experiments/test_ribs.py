"""The ribs experiment end to end: the tiny preset, a user's CT, an external (TotalSegmentator) rib mask, a mask
on another grid, and fine-tuning on the user's pairs."""

import csv
import math
import os

import nibabel as nib
import numpy as np
import pytest

from experiments import ribs as ribs_experiment
from experiments.ribs import config as ribs_config
from experiments.ribs import train as ribs_train
from jaxmed.io import NiftiError, reorient, save_nifti
from jaxmed.io.spine_labels import RIB_LEFT
from jaxmed.synth import ribs as phantoms


def test_ribs_tiny_end_to_end(tmp_path):
  config = ribs_config.get_config("tiny")
  results = ribs_train.train_and_evaluate(config, str(tmp_path))
  for k in ribs_experiment.HEADLINE + ("length/num_ribs", "f1/stump/full_view/length_rule", "f1/stump/full_view_ci",
                                       "f1/stump/partial_view_ci", "bayes_f1/stump/full_view",
                                       "length/arcs/mae_mm", "f1/stump/partial_view/gbm/ours"):
    assert k in results, k
  assert 0.0 <= results["dice/rib"] <= 1.0 and 0.0 <= results["length/success_rate_paper_criterion"] <= 1.0
  assert results["length/num_ribs"] == 4 * config.data.num_test
  assert 0.5 < results["bayes_f1/stump/full_view"] < 1.0
  lo, hi = results["f1/stump/full_view_ci"]
  assert lo <= results["f1/stump/full_view"] <= hi
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
  assert "| logistic | official |" in ribs_experiment.results_table(results)

  # fine-tuning on a user's CT + rib-mask pair, starting from this run's U-Net
  ph = phantoms.thoracolumbar_phantom(config.data.spacing, seed=11)
  pair = _write(tmp_path / "pair", ph, ("L", "A", "S"))
  ft = ribs_config.get_config("tiny")
  ft.data.update({"train_cts": pair["ct"], "train_ribs": pair["ribs"]})
  ft.model_dir, ft.train.finetune_steps = str(tmp_path), 2
  out = ribs_train.train_and_evaluate(ft, str(tmp_path / "finetune"))
  assert out["finetune/steps"] == 2 and os.path.isdir(tmp_path / "finetune" / "segmentation" / "checkpoints")
  ft.model_dir = str(tmp_path / "nothing_here")
  with pytest.raises(FileNotFoundError, match="nothing_here"):
    ribs_train.train_and_evaluate(ft, str(tmp_path / "finetune2"))


def _write(root, ph, codes, rib_labels=None, rib_affine=None):
  """The phantom's CT, vertebra and subregion masks (and a rib label map) as NIfTI in orientation ``codes``."""
  paths = {}
  maps = {"ct": ph["ct"], "vertebrae": ph["vertebra_instance"], "subregions": ph["subregions"],
          "ribs": ph["rib_mask"].astype(np.int32) if rib_labels is None else rib_labels}
  for name, vol in maps.items():
    data, aff = reorient(vol, ph["affine"], codes)
    if name == "ribs" and rib_affine is not None:
      data, aff = rib_affine(data, aff)
    paths[name] = save_nifti(str(root / f"{name}.nii.gz"), data, aff)
  return paths


def _totalseg_labels(ph):
  """TotalSegmentator v2 numbering: rib_left_k = 91 + k, rib_right_k = 103 + k (T11 -> 11, T12 -> 12)."""
  out = np.zeros(ph["rib_instance"].shape, np.int32)
  for vid, k in ((18, 11), (19, 12)):
    on = ph["rib_instance"] == vid + 32
    out[on & (ph["rib_semantic"] == RIB_LEFT)] = 91 + k
    out[on & (ph["rib_semantic"] != RIB_LEFT)] = 103 + k
  return out


def test_a_totalsegmentator_rib_mask_runs_without_the_unet(tmp_path):
  config = ribs_config.get_config("tiny")
  ph = phantoms.thoracolumbar_phantom(2.0, seed=9)
  config.data.update(_write(tmp_path, ph, ("L", "A", "S"), _totalseg_labels(ph)))
  results = ribs_train.train_and_evaluate(config, str(tmp_path / "out"))
  assert results["rib_mask_scheme"] == "totalseg" and results["num_ribs"] == 4
  assert not os.path.exists(tmp_path / "out" / "segmentation")          # no U-Net trained or run
  rows = list(csv.DictReader(open(tmp_path / "out" / "ribs.csv")))
  assert len(rows) == 4
  for r in rows:   # our assignment agrees with TotalSegmentator's numbering
    assert r["source_label"] == f"rib_{r['side']}_{r['vertebra'][1:]}", r
    assert float(r["length_mm"]) > 10 and math.isfinite(float(r["official/corpus/start_to_com_post"]))
  inst = nib.load(tmp_path / "out" / "rib_instance.nii.gz")
  assert nib.aff2axcodes(inst.affine) == ("L", "A", "S")


def test_a_rib_mask_on_another_grid_is_resampled_or_refused(tmp_path):
  config = ribs_config.get_config("tiny")
  ph = phantoms.thoracolumbar_phantom(2.0, seed=9)

  def finer(data, aff):   # the same ribs on a grid of half the voxel size, as another tool might write them
    fine = np.repeat(np.repeat(np.repeat(data, 2, 0), 2, 1), 2, 2)
    shift = aff[:3, :3] @ np.full(3, -0.25)
    out = aff.copy()
    out[:3, :3] = aff[:3, :3] / 2
    out[:3, 3] = aff[:3, 3] + shift
    return fine, out
  config.data.update(_write(tmp_path, ph, ("R", "A", "S"), rib_affine=finer))
  with pytest.warns(UserWarning, match="resampled to the CT's grid by nearest neighbour"):
    results = ribs_train.train_and_evaluate(config, str(tmp_path / "out"))
  assert results["rib_mask_scheme"] == "binary" and results["num_ribs"] == 4

  bad = nib.Nifti1Image(np.ones((7, 8, 9), np.uint8), None)   # another shape and no affine (qform/sform code 0)
  bad.header["qform_code"], bad.header["sform_code"] = 0, 0
  nib.save(bad, str(tmp_path / "bad.nii.gz"))
  config.data.ribs = str(tmp_path / "bad.nii.gz")
  with pytest.raises(NiftiError, match="bad.nii.gz.*no affine"):
    ribs_train.train_and_evaluate(config, str(tmp_path / "out2"))


def test_ribs_on_a_user_nifti_ct_in_its_own_orientation(tmp_path):
  """A phantom written as LAS NIfTI files goes through the U-Net path; outputs keep the CT's grid."""
  config = ribs_config.get_config("tiny")
  ph = phantoms.thoracolumbar_phantom(config.data.spacing, seed=9)
  paths = _write(tmp_path, ph, ("L", "A", "S"))
  paths.pop("ribs")
  config.data.update(paths)
  config.model_dir = str(tmp_path / "model")
  out = tmp_path / "out"
  results = ribs_train.train_and_evaluate(config, str(out))
  assert results["num_ribs"] >= 0
  ct = nib.load(paths["ct"])
  inst = nib.load(out / "rib_instance.nii.gz")
  assert inst.shape == ct.shape and np.allclose(inst.affine, ct.affine)
  assert os.path.exists(out / "ribs.csv") and os.path.isdir(tmp_path / "model" / "segmentation")
