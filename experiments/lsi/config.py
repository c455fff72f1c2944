"""Config for the LSI experiment.

  python -m experiments.lsi --config=experiments/lsi/config.py:demo --workdir=runs/lsi
  python -m experiments.lsi --config=experiments/lsi/config.py:tiny --workdir=/tmp/lsi

Presets:
  tiny  - a few hundred samples, short backbone training, one pruning seed: a CI smoke run.
  demo  - all 1797 scikit-learn digits (pretrain / LSI pool / test split) and
          the synthetic organ-and-lesion set; a few minutes on a CPU.
  paper - the paper's protocol sizes are not reachable offline (CIFAR-10 and
          ImageNet backbones need downloads); this preset keeps the demo data
          and runs the larger settings: more backbone steps, 5 pruning seeds.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Digits: 1797 images split into a backbone-pretraining part (clean labels), the
  # LSI pool (the probe's training set, where labels are flipped) and a test part.
  # A user's own backbone features instead of the built-in study: an .npz with features [N, D], labels [N] and
  # an optional split [N] ("train" rows are scored; jaxmed/io/features.py). Writes lsi_scores.csv.
  c.data = ml_collections.ConfigDict(dict(features=""))
  c.digits = ml_collections.ConfigDict(dict(n_pretrain=600, n_pool=900, n_test=297))
  c.lesions = ml_collections.ConfigDict(dict(size=16, difficulty=0.4, n_pretrain=600, n_pool=900, n_test=300))
  c.flip_fraction = 0.1  # labels flipped to a different random class in the digits pool

  # The backbone: a small CNN trained on the pretraining part; its 16-d
  # penultimate features (standardised on the pool) feed the probe.
  c.backbone = ml_collections.ConfigDict(dict(widths=(16, 32), feature_dim=16, steps=400, batch_size=64, lr=3e-3))
  # The linear probe's MAP: damped Newton from a seeded init until the gradient's max-norm is below newton_tol
  # (at most newton_steps; the unique optimum, see jaxmed.laplace.probes); "warm" restarts from the closed-form
  # one-step estimate for warm_steps steps.
  # chunk: leave-one-out runs vmapped together; 0 = from memory_budget_gb (1 on CPU, see
  # jaxmed.laplace.lsi: batched LAPACK calls can deadlock XLA:CPU; all at once on GPU).
  # memory_budget_gb: what one vmapped chunk of leave-one-out runs may hold (sets the chunk when chunk=0);
  # byo_exact_samples: exact leave-one-out on this many random samples of a user's features checks the closed form
  c.lsi = ml_collections.ConfigDict(dict(prior_precision=1.0, newton_steps=15, newton_tol=1e-10, warm_steps=3,
                                         chunk=0, memory_budget_gb=2.0, byo_exact_samples=100,
                                         datamap_steps=200, datamap_every=10, datamap_lr=0.05))
  # Transfer: a larger CNN trained on the noisy digits pool after dropping the
  # top / bottom / a random prune_fraction by LSI, tested on the clean test part.
  c.transfer = ml_collections.ConfigDict(dict(widths=(32, 64), feature_dim=64, steps=500, batch_size=64, lr=3e-3,
                                              prune_fraction=0.1, seeds=(0, 1, 2)))
  c.figures = ml_collections.ConfigDict(dict(per_class=4))
  c.train = ml_collections.ConfigDict(dict(log_every=50, save_every=500, keep=1))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset == "tiny":
    c.digits.n_pretrain, c.digits.n_pool, c.digits.n_test = 300, 200, 200
    c.lesions.n_pretrain, c.lesions.n_pool, c.lesions.n_test = 200, 120, 100
    c.backbone.steps = 60
    c.backbone.batch_size = 32  # divisible by the tests' 8 simulated devices
    c.lsi.newton_steps, c.lsi.datamap_steps = 10, 40
    c.transfer.steps, c.transfer.seeds, c.transfer.batch_size = 40, (0,), 32
    c.figures.per_class = 2
    c.train.log_every, c.train.save_every = 20, 40
  elif preset == "paper":
    c.backbone.steps = 2000
    c.transfer.steps, c.transfer.seeds = 2000, (0, 1, 2, 3, 4)
  return c
