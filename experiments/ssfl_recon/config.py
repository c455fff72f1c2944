"""Config for the SSFL-Recon experiment.

  python -m experiments.ssfl_recon --config=experiments/ssfl_recon/config.py:demo --workdir=runs/ssfl_recon

Presets:
  tiny  - 17x14 (non-square and odd: padded inside the UNet), 6 frames, 4 coils, a 1-iteration 1-level net
          with 4 filters, a few steps, one seed and both acquisition settings: a CI smoke run.
  demo  - 20x32 (32 phase-encoding lines, so R 4/8/12/16 draw distinct masks), 8 frames, 8 coils, the official
          2-iteration net with 8 filters and 2 levels, 130 steps, 3 seeds, the official acquisition (VISTA R = 2)
          and the prospective one (R = 8): 1739 s on 2 CPU cores.
  paper - the official network (12 filters, 2 levels, 2 iterations), 128x128 phantoms with 25 frames; for a GPU.

Real data: --config.data.train_files='/data/cine/train/*.mat' --config.data.test_files='/data/cine/test/*.mat'
(CMRxRecon ``cine_sax.mat`` with kspace_full or kspace_subNN, ISMRMRD ``.mrd`` (OCMR), or jaxmed's dynamic HDF5;
see jaxmed.io.cine_kspace). Sizes and frame counts come from the files; undersampled training files keep their
own mask as the acquisition; test files must be fully sampled.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.seeds = (0, 1, 2)
  c.data = ml_collections.ConfigDict(dict(
      shape=(20, 32), frames=8, coils=8, noise=0.002, num_train=24, num_test=8, cohort_seed=0,
      # the official acquisition: VISTA at R = 2, one fixed seed, views M_i = VISTA(R_i) & acquired, R_i in 2..16
      acquired_r=2.0, acquired_seed=10, view_r=(2, 16),
      # the prospective setting: training data acquired at the test R; views thin it by 2..4 (chosen a priori)
      prospective_r=8.0, prospective_view_r=(2, 4),
      eval_r=(4, 8, 12, 16), gain_r=8, train_files="", test_files=""))
  c.model = ml_collections.ConfigDict(dict(iterations=2, filters=8, levels=2))
  # stage 1: the feature extractor, "vicreg" (the official default) or contrastive "infonce"
  c.features = ml_collections.ConfigDict(dict(objective="vicreg", temperature=0.1, min_r_gap=5.0, steps=50,
                                              batch_size=4, lr=1e-3))
  c.train = ml_collections.ConfigDict(dict(steps=130, batch_size=2, lr=1e-3, log_every=26, save_every=130, keep=1))
  c.eval = ml_collections.ConfigDict(dict(cg_iters=20))
  if preset == "tiny":
    c.seeds = (0,)
    c.data.update(dict(shape=(17, 14), frames=6, coils=4, num_train=6, num_test=2, eval_r=(4, 8)))
    c.model.update(dict(iterations=1, filters=4, levels=1))
    c.features.update(dict(steps=2, batch_size=2))
    c.train.update(dict(steps=2, log_every=1, save_every=2))
  elif preset == "paper":
    c.data.update(dict(shape=(128, 128), frames=25, coils=12, num_train=200, num_test=20))
    c.model.update(dict(iterations=2, filters=12, levels=2))
    c.features.update(dict(steps=5000, batch_size=16, lr=4e-4))
    c.train.update(dict(steps=20000, batch_size=4, lr=4e-4, save_every=1000, keep=3))
  return c
