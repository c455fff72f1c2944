"""Config for ViTa: cine MAE pretraining, image-tabular alignment, downstream heads, with ablations.

  python -m experiments.vita --config=experiments/vita/config.py:demo --workdir=runs/vita

Presets:
  tiny  - 24 synthetic subjects, 16^2 px, 5 frames, a 2-block encoder, a few steps per stage: a CI smoke run.
  demo  - 240 subjects (160 train / 80 test), 32^2 px, 10 frames, 3 LAX + 6 SAX; CPU, ~15 min (35 min while
          sharing 2 cores with the test suite).
  paper - 128^2 px, 50 frames, ViT-B-sized encoder, UK-Biobank-sized steps; for GPU/TPU.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
  c.data = ml_collections.ConfigDict({"num_train": 160, "num_test": 80, "size": 32, "frames": 10, "num_sax": 6,
                                      "missing_fraction": 0.05})
  # ViTa: patch (t, h, w) = (5, 8, 8), mask ratio 0.7, CLIP temperature 0.1
  c.model = ml_collections.ConfigDict({"patch": (5, 8, 8), "dim": 64, "depth": 4, "heads": 4, "decoder_dim": 32,
                                       "decoder_depth": 2, "tab_dim": 64, "tab_depth": 2, "proj_dim": 64,
                                       "seg_width": 8})
  c.mae = ml_collections.ConfigDict({"steps": 800, "batch_size": 16, "lr": 1e-3, "mask_ratio": 0.7,
                                     "norm_pix": False})
  c.clip = ml_collections.ConfigDict({"steps": 400, "batch_size": 32, "lr": 3e-4, "temperature": 0.1})
  c.heads = ml_collections.ConfigDict({"steps": 400, "batch_size": 32, "lr": 1e-3, "huber_delta": 1.0})
  c.seg = ml_collections.ConfigDict({"steps": 150, "batch_size": 4, "lr": 1e-3})
  c.train = ml_collections.ConfigDict({"save_every": 200, "keep": 2, "log_every": 50, "weight_decay": 1e-4})
  if preset == "tiny":
    c.data.update({"num_train": 16, "num_test": 8, "size": 16, "frames": 5, "num_sax": 2})
    c.model.update({"dim": 32, "depth": 2, "heads": 2, "decoder_dim": 16, "decoder_depth": 1, "tab_dim": 32,
                    "tab_depth": 1, "proj_dim": 16, "seg_width": 4})
    for stage in ("mae", "clip", "heads", "seg"):
      c[stage].update({"steps": 6, "batch_size": 8})
    c.train.update({"save_every": 6, "log_every": 2})
  elif preset == "paper":
    c.data.update({"num_train": 40000, "num_test": 2000, "size": 128, "frames": 50})
    c.model.update({"dim": 768, "depth": 12, "heads": 12, "decoder_dim": 512, "decoder_depth": 8, "tab_dim": 256,
                    "tab_depth": 4, "proj_dim": 128, "seg_width": 32})
    c.mae.update({"steps": 200000, "batch_size": 64, "lr": 1.5e-4})
    c.clip.update({"steps": 50000, "batch_size": 256})
    c.heads.update({"steps": 20000, "batch_size": 64})
    c.seg.update({"steps": 20000, "batch_size": 16})
    c.train.update({"save_every": 2000, "keep": 3, "log_every": 100})
  return c
