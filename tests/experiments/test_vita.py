"""The ViTa experiment's tiny preset end to end: every stage, the results keys, the figures, resume."""

import math
import os

from experiments import vita as vita_experiment
from experiments.vita import config as vita_config
from experiments.vita import train as vita_train
from jaxmed.synth.heart import PHENOTYPES


def test_vita_tiny_end_to_end(tmp_path):
  config = vita_config.get_config("tiny")
  results = vita_train.train_and_evaluate(config, str(tmp_path))
  assert math.isfinite(results["mae/recon_mse"])
  for p in PHENOTYPES:
    for s in ("vita", "image_only", "scratch"):
      assert math.isfinite(results[f"pheno/mae/{p}/{s}"]) and f"pheno/r2/{p}/{s}" in results
  for s in ("vita", "image_only", "tabular_only", "scratch"):
    assert f"disease/auroc/{s}" in results and 0.0 <= results[f"disease/accuracy/{s}"] <= 1.0
  assert 0.0 <= results["seg/dice/vita"] <= 1.0 and 0.0 <= results["seg/dice/scratch"] <= 1.0
  for f in ("config.json", "results.json", "mae_reconstruction.png", "phenotypes.png", "retrieval.png", "mae",
            "clip", "seg_vita"):
    assert os.path.exists(tmp_path / f), f
  again = vita_train.train_and_evaluate(config, str(tmp_path))   # every stage resumes from its checkpoint
  assert again["mae/recon_mse"] == results["mae/recon_mse"]
  assert again["pheno/mae/LVEF/vita"] == results["pheno/mae/LVEF/vita"]
  assert "| LVEF (%) |" in vita_experiment.results_table(results)
