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
              *(f"sdlogj/{name}/lam{v:g}" for v in config.dedicated.lambdas),
              *(f"hyper_vs_dedicated/vxm/{v:g}/{m}" for v in config.dedicated.lambdas for m in ("dice", "sdlogj")),
              f"ndv_percent/{name}/lam0", f"hd95/{name}/lam1", "arc_auc_range/lo", "arc_auc_range/hi"):
    assert key in results and math.isfinite(results[key]), key
  assert 0.0 <= results[f"dice/{name}/lam0.5"] <= 1.0
  # The ceiling (the generator's own deformation) sits far above the floor (no registration).
  assert results["dice/oracle"] > 0.75 and results["dice/oracle"] > results["dice/unregistered"] + 0.3
  for f in ("config.json", "metrics.jsonl", "results.json", "arc.png", "examples.png", "arc_curves.json"):
    assert os.path.exists(tmp_path / f), f
  assert os.path.isdir(tmp_path / name / "hyper" / "checkpoints")
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {r["run"] for r in rows} == {f"{name}/hyper", *(f"{name}/lam{v:g}" for v in config.dedicated.lambdas)}
  with open(tmp_path / "arc_curves.json") as f:
    curve = json.load(f)[name]
  assert len(curve["lambda"]) == config.eval.num_lambdas


def test_learn2reg_root_gives_official_pairs_masks_and_keypoints(tmp_path):
  import json as _json

  import nibabel as nib
  import numpy as np

  for sub in ("imagesTr", "labelsTr", "masksTr", "keypointsTr"):
    (tmp_path / sub).mkdir()
  names = [f"NLST_{i:04d}_000{j}" for i in range(1, 4) for j in (0, 1)]
  rng = np.random.default_rng(0)
  for k, name in enumerate(names):
    nib.save(nib.Nifti1Image(rng.uniform(size=(8, 8, 8)).astype(np.float32), np.eye(4)),
             tmp_path / "imagesTr" / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.full((8, 8, 8), k % 3, np.int16), np.eye(4)), tmp_path / "labelsTr" / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), np.eye(4)), tmp_path / "masksTr" / f"{name}.nii.gz")
    np.savetxt(tmp_path / "keypointsTr" / f"{name}.csv", rng.uniform(1, 6, (3 + k % 2, 3)), delimiter=",")
  val = [{"fixed": f"./imagesTr/NLST_0003_0000.nii.gz", "moving": f"./imagesTr/NLST_0003_0001.nii.gz"}]
  (tmp_path / "NLST_dataset.json").write_text(_json.dumps({"registration_val": val}))
  config = arc_config.get_config("tiny")
  config.data.source, config.data.root, config.data.shape = "learn2reg", str(tmp_path), (8, 8, 8)
  config.data.train_names = tuple(names[:4])
  data = arc_train.load_data(config)
  assert data["val_moving"].shape == data["val_fixed"].shape == (1, 8, 8, 8, 1)  # the one official pair
  fixed_kp, moving_kp = data["val_keypoints"]
  assert fixed_kp.shape == moving_kp.shape == (1, 4, 3)
  assert np.isnan(fixed_kp[0, 3]).all() and np.isfinite(moving_kp[0]).all()  # 3 fixed points, padded to 4
  assert data["val_fixed_mask"].shape == (1, 8, 8, 8) and data["val_fixed_mask"].all()
