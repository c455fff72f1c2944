"""The SVR experiment's tiny preset end to end, its outputs and its per-subject cache."""

import csv
import glob
import json
import math
import os

import nibabel as nib

from experiments import svr as svr_experiment
from experiments.svr import config as svr_config
from experiments.svr import train as svr_train


def test_svr_tiny_end_to_end_and_cache(tmp_path):
  config = svr_config.get_config("tiny")
  results = svr_train.train_and_evaluate(config, str(tmp_path))
  for s in svr_experiment.SETTINGS:
    for k in (f"psnr/{s}", f"ssim/{s}", f"motion_err_deg/{s}", f"motion_err_mm/{s}"):
      assert math.isfinite(results[k]), k
    img = nib.load(tmp_path / f"{s}_recon.nii.gz")
    assert abs(img.affine[0, 0] - config.fit.output_spacing) < 1e-6 and img.shape[0] > 1
    rows = list(csv.DictReader(open(tmp_path / f"{s}_motion.csv")))
    weights = json.load(open(tmp_path / f"{s}_slice_weights.json"))
    assert len(rows) == len(weights["sigma"]) > 0
  # no correction keeps the stacks' geometry: zero estimated motion, error = the injected motion
  assert all(float(r["angle_deg"]) == 0.0 for r in csv.DictReader(open(tmp_path / "nocorr_motion.csv")))
  assert results["motion_err_deg/nocorr"] > 1.0
  assert 0.0 <= results["outlier_auroc"] <= 1.0
  informative = results["outlier_auroc/informative"]   # nan when a tiny subject has no clean informative slice
  assert math.isnan(informative) or 0.0 <= informative <= 1.0
  assert "steps_to_target/meta_init" in results and "steps_to_target/random_init" in results
  for f in ("config.json", "results.json", "views.png", "psnr_curve.png", "meta_init"):
    assert os.path.exists(tmp_path / f), f
  cached = sorted(glob.glob(str(tmp_path / "subject_0-*.json")))  # keyed by the settings that made it
  assert len(cached) == 1
  # a rerun reads the cached subject and the saved meta-initialisation
  again = svr_train.train_and_evaluate(config, str(tmp_path))
  assert again["psnr/meta_init"] == results["psnr/meta_init"]
  assert sorted(glob.glob(str(tmp_path / "subject_0-*.json"))) == cached
  assert f"| meta_init | {results['psnr/meta_init']:.2f} |" in svr_experiment.results_table(results)


def test_steps_to_target_counts_a_subject_that_never_reaches_it():
  # the second subject's meta-init never reached the target ("nan", as a cached subject reads back)
  subjects = [{"history": {}, "psnr/meta_init": 20.0, "steps_to_target/meta_init": 500.0,
               "steps_to_target/random_init": 1200.0},
              {"history": {}, "psnr/meta_init": float("nan"), "steps_to_target/meta_init": "nan",
               "steps_to_target/random_init": 1400.0}]
  r = svr_train.aggregate(subjects, steps=1500)
  assert r["steps_to_target/meta_init"] == 1000.0          # (500 + the whole 1500-step fit) / 2, not 500
  assert r["steps_to_target/meta_init/reached"] == 0.5 and r["steps_to_target/random_init/reached"] == 1.0
  assert r["steps_to_target/meta_init/subject_0"] == 500.0 and math.isnan(r["steps_to_target/meta_init/subject_1"])
  assert r["psnr/meta_init"] == 20.0                        # other metrics: NaN-aware mean
  assert "never" in svr_experiment.results_table(r)
