"""Config for ViTa: cine MAE pretraining, image-tabular alignment, probes and fine-tuning, one factor at a time.

  python -m experiments.vita --config=experiments/vita/config.py:demo --workdir=runs/vita

Presets:
  tiny  - 24 synthetic subjects, 16^2 px, 5 frames, a 1-block encoder, a few steps per stage: a CI smoke run.
  demo  - 420 train / 250 test subjects (>= 100 test positives), 32^2 px, 10 of 20 rendered frames, 3 LAX +
          6 SAX, a 65-wide 4-block encoder, 3 training seeds; CPU, about 61 min (20 of them segmentation).
  paper - the official sizes (Yundi-Zhang/ViTa configs): 128^2 px, 25 of 50 frames, encoder 1025 x 6 blocks with 5
          heads, decoder 1025 x 2 with 5 heads, tabular encoder 1025 x 2, projection 128; fine-tuning lr 1e-6;
          augmentation on. For GPU/TPU.

The official recipe (file and line in docs/results.md, ViTa section): MAE with mask 0.7, MSE on every patch,
a sigmoid output; alignment with 50% of image tokens masked, the mean of all tokens, SimCLR projection heads and
CLIP (tau 0.1); downstream the whole encoder fine-tuned (Huber for phenotypes, lr 1e-6) from a linear head on
all patch tokens.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0                       # the cohort
  c.seeds = (0, 1, 2)              # training seeds: every arm is trained once per seed
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
  c.data = ml_collections.ConfigDict({"num_train": 420, "num_test": 250, "size": 32, "render_frames": 20,
                                      "frames": 10, "num_sax": 6, "missing_fraction": 0.05, "min_test_positives": 100})
  # ViTa: patch (t, h, w) = (5, 8, 8); width 1 + 8m (the official position embedding needs (dim - 1) % 8 == 0)
  c.model = ml_collections.ConfigDict({"patch": (5, 8, 8), "dim": 65, "depth": 4, "heads": 5, "decoder_dim": 65,
                                       "decoder_depth": 2, "tab_dim": 65, "tab_depth": 2, "proj_dim": 32,
                                       "seg_width": 8, "ln_epsilon": 1e-6})
  c.mae = ml_collections.ConfigDict({"steps": 500, "batch_size": 16, "lr": 1e-3, "mask_ratio": 0.7,
                                     "mask_loss": False, "sigmoid": True, "norm_pix": False, "augment": False})
  c.clip = ml_collections.ConfigDict({"steps": 250, "batch_size": 32, "lr": 3e-4, "temperature": 0.1,
                                      "mask_ratio": 0.5, "augment": False})
  c.heads = ml_collections.ConfigDict({"steps": 300, "batch_size": 32, "lr": 1e-3, "huber_delta": 1.0})
  c.finetune = ml_collections.ConfigDict({"steps": 150, "batch_size": 16, "lr": 1e-4, "huber_delta": 1.0,
                                          "augment": False})
  # one lr for decoder and encoder in both arms, as the official segmentation config has (5e-4)
  c.seg = ml_collections.ConfigDict({"steps": 150, "batch_size": 4, "lr": 1e-3})
  # oracle_fit: fresh subjects the oracle regressions are fitted on (the ceilings need a large sample)
  c.eval = ml_collections.ConfigDict({"bootstrap": 1000, "oracle_fit": 20000})
  c.train = ml_collections.ConfigDict({"save_every": 250, "keep": 1, "log_every": 50, "weight_decay": 1e-4})
  if preset == "tiny":
    c.seeds = (0,)
    c.data.update({"num_train": 16, "num_test": 8, "size": 16, "render_frames": 5, "frames": 5, "num_sax": 2,
                   "min_test_positives": 0})
    c.model.update({"dim": 33, "depth": 1, "heads": 3, "decoder_dim": 33, "decoder_depth": 1, "tab_dim": 33,
                    "tab_depth": 1, "proj_dim": 16, "seg_width": 4})
    for stage in ("mae", "clip", "heads", "finetune", "seg"):
      c[stage].update({"steps": 4, "batch_size": 8})
    c.eval.update({"bootstrap": 50, "oracle_fit": 1000})
    c.train.update({"save_every": 4, "log_every": 2})
  elif preset == "paper":
    c.data.update({"num_train": 40000, "num_test": 2000, "size": 128, "render_frames": 50, "frames": 25,
                   "min_test_positives": 100})
    c.model.update({"dim": 1025, "depth": 6, "heads": 5, "decoder_dim": 1025, "decoder_depth": 2, "tab_dim": 1025,
                    "tab_depth": 2, "proj_dim": 128, "seg_width": 32, "ln_epsilon": 1e-5})
    c.mae.update({"steps": 200000, "batch_size": 64, "lr": 1.5e-4, "augment": True})
    c.clip.update({"steps": 50000, "batch_size": 256, "lr": 3e-3, "augment": True})
    c.heads.update({"steps": 20000, "batch_size": 64})
    c.finetune.update({"steps": 20000, "batch_size": 8, "lr": 1e-6, "augment": True})
    c.seg.update({"steps": 20000, "batch_size": 1, "lr": 5e-4})
    c.train.update({"save_every": 2000, "keep": 3, "log_every": 100})
  return c
