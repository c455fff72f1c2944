"""Config for the stump-rib experiment (segmentation, assignment, rib length, features, classifier).

  python -m experiments.ribs --config=experiments/ribs/config.py:demo --workdir=runs/ribs

Presets:
  tiny  - 3 mm phantoms, a 2-level U-Net for 20 steps, one test CT: a CI smoke run.
  demo  - 1.5 mm phantoms; a 3-level U-Net (12/24/48) trained 1500 steps on 6 CTs; 6 held-out CTs (full and cut
          field of view); 24 analytic arcs; a classifier cohort of 150 training and 105 test phantoms (300 and
          210 lowest ribs; the test ribs in both views); CPU, ~65 min.
  paper - 1 mm phantoms, a 5-level U-Net, more CTs and steps; for a GPU.
  Your CT: --config.data.ct=ct.nii.gz --config.data.vertebrae=vert.nii.gz --config.data.subregions=subreg.nii.gz
  (SPINEPS/TPTBox instance and subregion masks on the CT's grid, any orientation) segments, assigns and
  measures its ribs with the U-Net of --config.model_dir=<a previous run's workdir> (trained on phantoms
  when that holds none); writes rib_instance.nii.gz / rib_semantic.nii.gz in the CT's orientation and ribs.csv.
  Your rib mask: add --config.data.ribs=ribs.nii.gz (binary, TotalSegmentator's rib_left/right_1..12 labels or
  the official model's; detected, or --config.data.rib_labels=binary|totalseg|official_semantic|official_instance):
  no U-Net is trained or run. A mask on another grid is resampled (nearest neighbour) with a warning.
  Fine-tune the U-Net: --config.data.train_cts=a.nii.gz,b.nii.gz --config.data.train_ribs=a_rib.nii.gz,b_rib.nii.gz
  (--config.model_dir=<a previous run> to start from its weights; train.finetune_steps steps).
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
  c.data = ml_collections.ConfigDict({
      "spacing": 1.5, "num_train": 6, "num_test": 6, "stump_probability": 0.5,
      "noise_hu": 20.0, "partial_lateral_mm": (40.0, 60.0), "num_cohort_train": 150, "num_cohort_test": 105,
      "num_arcs": 24, "ct": "", "vertebrae": "", "subregions": "", "ribs": "", "rib_labels": "auto",
      "train_cts": "", "train_ribs": ""})
  c.model_dir = ""
  c.model = ml_collections.ConfigDict({"widths": (12, 24, 48), "deep_supervision": True})
  c.train = ml_collections.ConfigDict({
      "steps": 1500, "finetune_steps": 300, "batch_size": 2, "patch": (32, 32, 32), "lr": 3e-3, "warmup": 20,
      "weight_decay": 1e-4,
      "foreground_fraction": 0.5, "save_every": 200, "keep": 2, "log_every": 20})
  # components under min_component_mm3 are dropped before assignment (the smallest stump, 15 mm x pi x 2.6^2 mm,
  # is ~320 mm^3): a false-positive fragment next to the arcus out-dominated a whole rib without it
  c.infer = ml_collections.ConfigDict({"overlap": 0.5, "batch_size": 4, "threshold": 0.5, "min_component_mm3": 150.0,
                                       "surface_tolerance_mm": 1.5})
  # rib length (the official defaults) and classifiers
  c.length = ml_collections.ConfigDict({"stump_threshold_mm": 38.0, "shell_radius_mm": 15.0, "max_iterations": 150,
                                        "resolution_mm": 0.5, "tip_tolerance_mm": 5.0})
  # classifiers on local features; "official" = the official feature set, "ours" = ours (jaxmed.ribs.features)
  c.classifier = ml_collections.ConfigDict({"kinds": ("logistic", "gbm", "mlp"), "primary": "logistic",
                                            "feature_sets": ("official", "ours"), "primary_features": "official"})
  if preset == "tiny":
    c.data.update({"spacing": 3.0, "num_train": 1, "num_test": 1, "num_cohort_train": 6, "num_cohort_test": 3,
                   "num_arcs": 2})
    c.model.update({"widths": (4, 8)})
    c.train.update({"steps": 20, "batch_size": 8, "patch": (16, 16, 16), "save_every": 10, "log_every": 5})
    c.classifier.update({"kinds": ("logistic", "gbm")})
  elif preset == "paper":
    c.data.update({"spacing": 1.0, "num_train": 40, "num_test": 40, "num_cohort_train": 500,
                   "num_cohort_test": 250})
    c.model.update({"widths": (32, 64, 128, 256, 320)})
    c.train.update({"steps": 20000, "batch_size": 2, "patch": (96, 96, 96), "save_every": 1000})
  return c
