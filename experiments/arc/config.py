"""Config for the ARC experiment.

  python -m experiments.arc --config=experiments/arc/config.py:demo --workdir=runs/arc
  python -m experiments.arc --config=experiments/arc/config.py:tiny --workdir=/tmp/arc \\
      --config.train.steps=50

Presets:
  tiny  - 32x32 images, one model, a few dozen steps: a CI smoke run.
  demo  - 64x64 synthetic brains; VoxelMorph UNet, LKU-Net and TransMorph, each
          with a displacement and an SVF; dedicated models for the SVF ones;
          about 20-35 minutes on 2 CPU cores.
  paper - 3D 160x192x224 (OASIS, Learn2Reg), bf16 compute, half-resolution
          SVF, remat, HyperMorph's 6x128 hypernetwork; compiles to at most
          15 GB per train step and 56 GB per sweep chunk (benchmarks/arc.py):
          one H100.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  # "synth": the atlas generator of jaxmed.synth.atlas. "learn2reg": NIfTI subjects
  # root/imagesTr/<name>.nii.gz with root/labelsTr/<name>.nii.gz (OASIS layout);
  # set data.root, data.train_names and data.val_names.
  c.data.source = "synth"
  c.data.root = ""
  c.data.train_names = ("",)
  c.data.val_names = ("",)
  c.data.shape = (64, 64)
  c.data.n_train_subjects = 48
  c.data.n_val_subjects = 8
  c.data.n_val_pairs = 16
  c.data.deform_scale = -1.0  # -1: the generator's default, 0.06 * min(shape) voxels
  c.data.noise = 0.02

  # One entry per (architecture x transformation model): "vxm" (VoxelMorph UNet) | "lku" (LKU-Net) |
  # "tm" (TransMorph), "disp" | "svf". Every model gets a hypernetwork ARC; dedicated.models also get
  # dedicated fixed-lambda models (one transformation model per architecture).
  c.models = ("vxm-disp", "vxm-svf", "lku-disp", "lku-svf", "tm-disp", "tm-svf")
  # vxm: encoder/decoder/final widths; lku: lku_start channels, len(encoder) levels; tm: embed, depths,
  # heads, window. svf_half_res integrates the SVF at half resolution (HyperMorph); remat checkpoints
  # each UNet level / Swin block.
  c.net = ml_collections.ConfigDict(dict(encoder=(8, 16, 16, 16), decoder=(16, 16, 16, 16), final=(16, 8, 8),
                                         int_steps=7, lku_start=4, tm_embed=8, tm_depths=(2, 2, 2),
                                         tm_heads=(2, 2, 4), tm_window=(4, 4), svf_half_res=False, remat=False))
  # The hypernetwork generates every kernel, bias and PReLU slope of the registration network
  # (HyperMorph). Choices measured on a calibration cohort (seed 7, vxm-svf; never the demo's pairs),
  # relative Dice / SDlogJ differences, hypernetwork vs dedicated, at lambda = 0.1, 0.5, 0.9:
  # * head_kernel_lr_scale 1 (HyperMorph's) rather than 1/16: at 600 steps each, Dice -3/-3/-7%
  #   instead of -6/-10/-14%.
  # * endpoint_prob 0: with 20% of the draws at lambda = 0 or 1, the 10% at lambda = 1 (pure
  #   smoothness, optimum: the identity) pull lambda = 0.9 to the identity as training goes on
  #   (1800 steps: SDlogJ 0.007 vs 0.020 dedicated, Dice 0.35 vs 0.44); without them 0.031 / 0.44.
  # * steps 0: as many steps as each dedicated model (train.steps). Dedicated models at 600 steps
  #   are not converged (at 1800 steps their Dice rises 0.60 -> 0.66 at lambda = 0.1).
  c.hyper = ml_collections.ConfigDict(dict(hidden=(128,) * 6, head_scale=1e-2, endpoint_prob=0.0,
                                           head_kernel_lr_scale=1.0, steps=0))
  c.loss = ml_collections.ConfigDict(dict(similarity="ncc", ncc_window=9, penalty="l2", weighting="convex"))

  c.train = ml_collections.ConfigDict(dict(steps=1000, batch_size=4, lr=1e-3, log_every=25, save_every=200,
                                           keep=2))
  c.dedicated = ml_collections.ConfigDict(dict(lambdas=(0.1, 0.5, 0.9), models=("vxm-svf", "lku-svf", "tm-svf")))
  # lambda_batch_size: k > 0 runs lax.map over chunks of k vmapped lambdas; 0 takes the largest
  # chunk whose compiled evaluation fits arc.memory_budget_gb. On a 2-core CPU k = 1 (lax.map) is
  # 6.6x faster than the full vmap and as fast as a Python loop (benchmarks/arc.py): vmapped
  # generated weights become grouped convolutions. pair_batch_size: p > 0 registers p validation
  # pairs at a time (0: all at once). label_warp "nearest" is Learn2Reg's.
  c.eval = ml_collections.ConfigDict(dict(num_lambdas=11, label_warp="nearest", lambda_batch_size=1,
                                           pair_batch_size=0))
  # compute_dtype: "bfloat16" runs the networks in bf16 (fp32 master params, fp32 transformation model).
  c.arc = ml_collections.ConfigDict(dict(memory_budget_gb=8.0, compute_dtype="float32"))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))

  if preset == "tiny":
    c.data.shape = (32, 32)
    c.data.n_train_subjects = 8
    c.data.n_val_subjects = 4
    c.data.n_val_pairs = 4
    c.models = ("vxm-svf",)
    c.dedicated.models = ("vxm-svf",)
    c.net.encoder, c.net.decoder, c.net.final = (8, 8), (8, 8), (8,)
    c.hyper.hidden = (32,) * 2
    # batch 8 so the tests can shard it over their 8 simulated devices
    c.train.steps, c.train.batch_size, c.train.log_every, c.train.save_every = 20, 8, 5, 10
    c.eval.num_lambdas = 5
  elif preset == "paper":
    c.data.source = "learn2reg"  # OASIS 160x192x224; pass --config.data.root and the name lists
    c.data.shape = (160, 192, 224)
    c.data.n_val_pairs = 19
    c.net.encoder, c.net.decoder, c.net.final = (16, 32, 32, 32), (32, 32, 32, 32), (32, 16, 16)
    c.net.lku_start, c.net.tm_embed, c.net.tm_heads, c.net.tm_window = 8, 48, (4, 4, 8), (5, 6, 7)
    c.net.svf_half_res, c.net.remat = True, True
    c.arc.compute_dtype = "bfloat16"
    c.arc.memory_budget_gb = 60.0  # an H100 (80 GB) with room for XLA's own buffers
    c.train.steps, c.train.batch_size, c.train.lr, c.train.save_every = 100_000, 1, 1e-4, 5_000
    c.train.log_every = 100
    c.eval.lambda_batch_size = 0  # from arc.memory_budget_gb
    c.eval.pair_batch_size = 1  # one 160x192x224 pair at a time: its Jacobians and simplex volumes are ~3 GB
  return c
