"""The ARC experiment's tiny preset runs end to end and honours the workdir contract."""

import json
import math
import os

from experiments.arc import config as arc_config
from experiments.arc import train as arc_train


def test_arc_tiny_end_to_end(tmp_path):
  config = arc_config.get_config("tiny")
  results = arc_train.train_and_evaluate(config, str(tmp_path))
  name = config.models[0]
  for key in (f"arc_auc/{name}", f"dedicated_gap/{name}", f"spearman_lambda_sdlogj/{name}",
              *(f"dice/{name}/lam{v:g}" for v in config.dedicated.lambdas),
              *(f"sdlogj/{name}/lam{v:g}" for v in config.dedicated.lambdas)):
    assert key in results and math.isfinite(results[key]), key
  assert 0.0 <= results[f"dice/{name}/lam0.5"] <= 1.0
  for f in ("config.json", "metrics.jsonl", "results.json", "arc.png", "examples.png", "arc_curves.json"):
    assert os.path.exists(tmp_path / f), f
  assert os.path.isdir(tmp_path / name / "hyper" / "checkpoints")
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {r["run"] for r in rows} == {f"{name}/hyper", *(f"{name}/lam{v:g}" for v in config.dedicated.lambdas)}
  with open(tmp_path / "arc_curves.json") as f:
    curve = json.load(f)[name]
  assert len(curve["lambda"]) == config.eval.num_lambdas
