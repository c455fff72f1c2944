"""Config for the WSI region-graph experiment.

  python -m experiments.wsi_graph --config=experiments/wsi_graph/config.py:demo --workdir=runs/wsi_graph

Presets:
  tiny  - 24 small synthetic slides, a few training steps: a CI smoke run.
  demo  - 128 synthetic H&E slides (768 px, 3-level pyramidal TIFF), graphs at
          level 1; minutes on a CPU.
  paper - point ``data.slide_dir`` at real slides (a ``labels.csv`` with
          ``slide,stage,time,event`` next to them) and use level 1 of a 20x scan;
          more regions per slide and longer training.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # slides: synthetic unless slide_dir is set; graphs are built at `level` of the pyramid
  c.data = ml_collections.ConfigDict(dict(slide_dir="", num_train=96, num_test=32, size=768, levels=3, level=1))
  # regions: SLIC superpixels in the tissue mask; the patch-graph / ABMIL baselines use square patches
  c.regions = ml_collections.ConfigDict(dict(n_segments=250, compactness=10.0, patch=24))
  c.model = ml_collections.ConfigDict(dict(hidden=64, heads=4, coarsen_rounds=1, threshold=0.9, embed_dim=16))
  c.train = ml_collections.ConfigDict(dict(steps=400, batch_size=16, lr=2e-3, weight_decay=1e-4, cox_weight=1.0,
                                           log_every=20, save_every=200, keep=1))
  c.ig = ml_collections.ConfigDict(dict(steps=64, num_slides=4))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  if preset == "tiny":
    c.data.update(dict(num_train=16, num_test=8, size=256))
    c.regions.update(dict(n_segments=60, patch=16))
    c.model.update(dict(hidden=16, heads=2))
    c.train.update(dict(steps=6, batch_size=8, log_every=2, save_every=6))
    c.ig.update(dict(steps=16, num_slides=2))
  elif preset == "paper":
    c.data.update(dict(num_train=0, num_test=0))
    c.regions.update(dict(n_segments=2000, patch=64))
    c.model.update(dict(hidden=128, heads=8, coarsen_rounds=2))
    c.train.update(dict(steps=5000, batch_size=32, save_every=500, keep=3))
  return c
