"""The SVR experiment's tiny preset end to end, its outputs and its per-fit cache; the steps-to-target bookkeeping."""

import csv
import glob
import json
import math
import os

import nibabel as nib
import pytest

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
  assert results["motion_err_deg/oracle"] < 0.01      # the ceiling is given the true motion and keeps it
  assert 0.0 <= results["outlier_auroc/random_init"] <= 1.0
  for k in ("steps_to_target/random_init", "steps_to_target/meta_init", "time_to_target/random_init",
            "time_to_target/meta_init", "speedup/meta_init", "psnr/motion_20deg/random_init",
            "psnr/motion_20deg/meta_init", "psnr/metasvr_preset"):
    assert math.isfinite(results[k]), k
  for f in ("config.json", "results.json", "views.png", "psnr_curve.png", "meta_init_seed0"):
    assert os.path.exists(tmp_path / f), f
  cached = sorted(glob.glob(str(tmp_path / "fits" / "*.json")))  # keyed by the settings that made them
  assert len(cached) == 4 + 2 + 1                         # held-out settings, the sweep's two inits, MetaSVR's options
  # a rerun reads the cached fits and the saved meta-initialisation
  again = svr_train.train_and_evaluate(config, str(tmp_path))
  assert again["psnr/meta_init"] == results["psnr/meta_init"]
  assert sorted(glob.glob(str(tmp_path / "fits" / "*.json"))) == cached
  table = svr_experiment.results_table(results)
  assert f"| meta_init | {results['psnr/meta_init']:.2f} |" in table and "| 20 deg |" in table


def _hist(psnrs, every=100, per_step_s=0.1):
  return [{"step": i * every, "time_s": i * every * per_step_s, "psnr": p} for i, p in enumerate(psnrs)]


def test_steps_to_target_is_honest_about_fits_that_never_reach_it():
  # target per (subject, seed) = the random init's final PSNR; step 0 never counts
  recs = [{"subject": 0, "seed": 0, "psnr/random_init": 20.0, "psnr/meta_init": 20.5,
           "history/random_init": _hist([10, 15, 18, 20]), "history/meta_init": _hist([20.5, 20.2, 20.4, 20.5])},
          {"subject": 1, "seed": 0, "psnr/random_init": 21.0, "psnr/meta_init": 19.0,
           "history/random_init": _hist([10, 21.5, 20.0, 21.0]), "history/meta_init": _hist([12, 16, 18, 19])}]
  r = svr_train.aggregate(recs, steps=300)
  assert r["steps_to_target/meta_init/subject_0_seed_0"] == 100.0           # at its first evaluation, not 0
  assert math.isnan(r["steps_to_target/meta_init/subject_1_seed_0"])
  assert r["steps_to_target/meta_init"] == (100 + 300) / 2                 # never = the whole fit
  assert r["steps_to_target/random_init"] == (300 + 100) / 2
  assert r["steps_to_target/meta_init/reached"] == 0.5
  assert r["speedup/meta_init"] == pytest.approx(1.0)
  assert r["time_to_target/meta_init"] == pytest.approx((10 + 30) / 2)
  assert r["psnr/meta_init"] == 19.75 and math.isnan(r["psnr/meta_init/seed_sd"])


def test_real_stacks_path_with_masks_n4_prealignment_and_halo(tmp_path):
  # NIfTI stacks and per-stack masks, as a user brings them; every pre-processing option on
  import numpy as np
  from jaxmed.synth import fetal
  ph = fetal.fetal_brain_phantom(24, 1.6, seed=9)
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], seed=10, mask=ph["mask"], inplane=1.6, thickness=4.0)
  paths, masks = [], []
  for i, st in enumerate(stacks):
    paths.append(str(tmp_path / f"stack{i}.nii.gz"))
    masks.append(str(tmp_path / f"mask{i}.nii.gz"))
    nib.save(nib.Nifti1Image(st["image"] * 750.0, st["affine"]), paths[-1])
    nib.save(nib.Nifti1Image(st["mask"].astype(np.uint8), st["affine"]), masks[-1])
  config = svr_config.get_config("tiny")
  config.data.update({"stacks": ",".join(paths), "masks": ",".join(masks), "thickness_user": 4.0})
  config.prep.update({"n4": True, "prealign": True, "halo_mm": 3.2})
  out = tmp_path / "run"
  results = svr_train.train_and_evaluate(config, str(out))
  n_masked = sum(int(st["mask"].sum()) for st in stacks)
  assert results["num_slices"] == sum(st["image"].shape[2] for st in stacks)
  assert results["num_pixels"] > n_masked                     # the halo added background pixels
  recon = nib.load(out / "recon.nii.gz").get_fdata()
  assert np.isfinite(recon).all() and 0.1 < np.percentile(recon, 99.5) < 10.0  # normalised, not x750
