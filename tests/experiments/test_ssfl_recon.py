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
