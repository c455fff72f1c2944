"""The ViTa experiment's tiny preset end to end: every stage and arm, the results keys, the figures, resume."""

import math
import os

from experiments import vita as vita_experiment
from experiments.vita import config as vita_config
from experiments.vita import train as vita_train

ARMS = ("image_only", "aligned_image_only", "aligned_fused", "tabular_only", "tabular_logreg", "scratch")


def test_vita_tiny_end_to_end(tmp_path):
  config = vita_config.get_config("tiny")
  config.data.update({"num_train": 24, "num_test": 16})
  results = vita_train.train_and_evaluate(config, str(tmp_path))
  for k in ("image", "tabular", "joint"):
    assert 0.0 <= results[f"oracle/disease_auroc/{k}"] <= 1.0
  for arm in ARMS + ("aligned_finetuned", "random_init"):
    lo, hi = results[f"disease/auroc/{arm}_ci"]
    assert lo <= results[f"disease/auroc/{arm}"] <= hi
    for p in ("LVEF", "LVCO"):
      assert math.isfinite(results[f"pheno/r2/{p}/{arm}"]) and len(results[f"pheno/r2/{p}/{arm}_ci"]) == 2
  assert "disease/auroc_mlp/aligned_fused" in results and "pheno/r2_mlp/LVEF/image_only" in results
  assert 0.0 <= results["seg/dice/frozen"] <= 1.0 and 0.0 <= results["seg/dice/finetuned"] <= 1.0
  assert results["mae/mse_all"] < results["mae/mean_baseline_mse_all"] * 5
  for f in ("config.json", "results.json", "mae_reconstruction.png", "ablation.png", "seed0/mae", "seed0/clip",
            "seed0/seg_frozen", "seed0/scratch/finetune_disease"):
    assert os.path.exists(tmp_path / f), f
  again = vita_train.train_and_evaluate(config, str(tmp_path))   # every stage resumes from its checkpoint
  assert again["mae/mse_all"] == results["mae/mse_all"]
  assert again["disease/auroc/aligned_finetuned"] == results["disease/auroc/aligned_finetuned"]
  assert "| aligned_fused |" in vita_experiment.results_table(results)
