"""The SSFL-Recon experiment's tiny preset end to end: every method and R in results.json, figures, checkpoints."""

import json
import math
import os

from experiments.ssfl_recon import config as ssfl_config
from experiments.ssfl_recon import train as ssfl_train


def test_ssfl_recon_tiny_end_to_end(tmp_path):
  config = ssfl_config.get_config("tiny")
  results = ssfl_train.train_and_evaluate(config, str(tmp_path))
  for r in config.data.eval_r:
    for method in ssfl_train.METHODS:
      for metric in ("psnr", "ssim", "nmse"):
        key = f"{metric}/R{r}/{method}"
        assert key in results and math.isfinite(results[key]), key
    assert os.path.exists(tmp_path / f"recon_R{r}.png")
  assert results["psnr/R4/cg_sense"] > results["psnr/R4/zero_filled"]
  for name in ("features_infonce", *ssfl_train.NETS):
    assert os.path.isdir(tmp_path / name / "checkpoints"), name
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {r["run"] for r in rows} == {"features_infonce", *ssfl_train.NETS}


def test_h5_subjects_read_dynamic_kspace(tmp_path):
  import h5py
  import numpy as np

  from jaxmed.synth.cine import cine_phantom

  p = cine_phantom(0, size=(16, 16), frames=4, coils=4, noise=0.0)
  with h5py.File(tmp_path / "a.h5", "w") as f:
    f.create_dataset("kspace", data=p["kspace"][None]).attrs["axis_order"] = "slice,frame,coil,kx,ky"
    f["coil_maps"] = p["maps"][None]
  (subject,) = ssfl_train.h5_subjects(str(tmp_path / "*.h5"))
  np.testing.assert_allclose(subject["image"], p["image"], atol=1e-5)
  assert subject["kspace"].shape == (4, 4, 16, 16)
