"""Config for the SSFL-Recon experiment.

  python -m experiments.ssfl_recon --config=experiments/ssfl_recon/config.py:demo --workdir=runs/ssfl_recon

Presets:
  tiny  - 16x16, 8 frames, 4 coils, a 1-iteration net with 4 filters, a few steps: a CI smoke run.
  demo  - 32x32, 12 frames, 8 coils, a 3-iteration net with 8 filters and 2 levels, 200 steps per
          network; a few minutes per network on a CPU.
  Real data: --config.data.h5_train='/data/cine/train/*.h5' --config.data.h5_test='/data/cine/test/*.h5'
  (fully-sampled dynamic k-space, see jaxmed.io.load_kspace_h5; size and frames must match the files).

  paper - the paper's UNet (12 filters, 2 levels), 5 iterations, 128x128 phantoms with 25 frames; for a GPU.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = ml_collections.ConfigDict(dict(size=32, frames=12, coils=8, noise=0.002, num_train=24, num_test=4,
                                          r_min=2.0, r_max=16.0, eval_r=(4, 8, 12, 16),
                                          h5_train="", h5_test=""))
  c.model = ml_collections.ConfigDict(dict(iterations=3, filters=8, levels=2))
  # stage 1: the feature extractor, contrastive ("infonce") or "vicreg"; views at the same R, other mask seeds
  c.features = ml_collections.ConfigDict(dict(objective="infonce", temperature=0.1, min_r_gap=5.0, steps=40,
                                              batch_size=4, lr=1e-3))
  c.train = ml_collections.ConfigDict(dict(steps=200, batch_size=2, lr=1e-3, log_every=25, save_every=200, keep=1))
  c.eval = ml_collections.ConfigDict(dict(cg_iters=20))
  if preset == "tiny":
    c.data.update(dict(size=16, frames=8, coils=4, num_train=8, num_test=2, eval_r=(4, 8)))
    c.model.update(dict(iterations=1, filters=4, levels=1))
    c.features.update(dict(steps=3, batch_size=4))
    c.train.update(dict(steps=3, log_every=1, save_every=3))
  elif preset == "paper":
    c.data.update(dict(size=128, frames=25, coils=12, num_train=200, num_test=20))
    c.model.update(dict(iterations=5, filters=12, levels=2))
    c.features.update(dict(steps=5000, batch_size=16))
    c.train.update(dict(steps=20000, batch_size=4, save_every=1000, keep=3))
  return c
