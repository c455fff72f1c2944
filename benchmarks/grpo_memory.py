"""Benchmark: the GRPO step's memory plan at paper scale, compiled on abstract inputs (nothing is allocated),
and what remat and chunking cost on a tiny model.

  python benchmarks/grpo_memory.py [--json PATH] [--only llama8b_fsdp8,qwen2vl2b_1dev,...]
                                   [--plain qwen2vl2b_1dev,...] [--no-tiny]

Each configuration builds the policy, its optimiser state and a batch as
``jax.ShapeDtypeStruct`` with their shardings on a simulated mesh
(``--xla_force_host_platform_device_count=8``), compiles the three jitted
programs of a GRPO step and reads XLA's ``compiled.memory_analysis()``,
which is per device under SPMD:

* ``update``: ``jaxmed.rl.make_grpo_step`` (state donated, micro-batches,
  remat, chunked head, bf16 compute, fp32 master params and Adam);
* ``reference``: the frozen reference's log-probs (``jaxmed.rl.micro_map``);
* ``rollout``: ``jaxmed.llm.generate`` with the KV cache, rows split over
  the mesh.

A program's peak is ``arguments + outputs - aliased + temporaries``; the
buffers that live through it without being its arguments are added (the
optimiser state during the rollout and the reference pass, the reference
params during the update and the rollout). ``<config>/peak_gb_per_device``
is the largest of the three, in GB (1e9 bytes). ``<config>/plain_update_gb``
compiles the update without micro-batches, remat or the chunked head (the
full ``[B, P+T-1, V]`` float32 logits), to show what the bounded update
saves.

Configurations: Llama-3.1-8B (hyper-parameters of its config.json) with
AlphaMed's update of 64 prompts x 8 samples, 512 prompt and 1024 completion
tokens, FSDP over 8 devices; Qwen2-VL-2B with MedVLM-R1's 8 prompts x 4
samples, one 448 x 448 image (256 merged image tokens) in a 420-token prompt,
1024 completion tokens, on 1 device and FSDP over 2. The memory plans come from
XLA's CPU compiler: a GPU's fusions and its cuDNN attention (``LMConfig.attention="cudnn"``, which
never stores the ``[T, S]`` scores) differ, so the GPU peak can be lower, not higher, in the attention
temporaries.

The tiny part times the update of a 4-layer model on this CPU with and without remat and chunking
(``tiny/bounded_over_plain``: the cost of recomputation).
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from figures import write_figures  # noqa: E402
from jaxmed import core, llm, rl, vlm  # noqa: E402
from jaxmed.core.mesh import batch_sharding, replicated  # noqa: E402

GB = 1e9
LLAMA_8B = llm.LMConfig(family="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
                        num_heads=32, num_kv_heads=8, head_dim=128, rms_norm_eps=1e-5, rope_theta=500000.0,
                        rope_scaling=(8.0, 1.0, 4.0, 8192), max_position_embeddings=131072, bos_token_id=128000,
                        eos_token_id=(128001, 128008, 128009))
QWEN2_VL_2B = vlm.VLMConfig(
    text=llm.LMConfig(family="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_layers=28,
                      num_heads=12, num_kv_heads=2, head_dim=128, rope_theta=1e6, qkv_bias=True, tie_embeddings=True,
                      mrope_section=(16, 24, 24), max_position_embeddings=32768, eos_token_id=151645),
    vision=vlm.VisionConfig(depth=32, embed_dim=1280, out_dim=1536, num_heads=16),
    image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653)

# name: (model config, devices, prompts, group size, prompt tokens, completion tokens, micro-batch rows, image?)
CONFIGS = {
    "llama8b_fsdp8": (LLAMA_8B, 8, 64, 8, 512, 1024, 64, False),
    "qwen2vl2b_1dev": (QWEN2_VL_2B, 1, 8, 4, 420, 1024, 4, True),
    "qwen2vl2b_fsdp2": (QWEN2_VL_2B, 2, 8, 4, 420, 1024, 4, True),
}
BETA, IMAGE_PATCHES = 0.04, 1024   # 448 x 448 / 14^2 patches, merged 2 x 2 into 256 tokens


def sds(shape, dtype, sharding):
  return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)


def build_model(cfg, bounded: bool):
  opts = dict(dtype="bfloat16", remat="full" if bounded else "none")
  if isinstance(cfg, vlm.VLMConfig):
    vision = dataclasses.replace(cfg.vision, dtype="bfloat16", remat=bounded)
    return vlm.Qwen2VL(dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, **opts), vision=vision))
  return llm.Decoder(dataclasses.replace(cfg, **opts))


def abstract_params(model, mesh):
  if isinstance(model, vlm.Qwen2VL):
    from jaxmed.vlm.hf import _abstract
    shapes = _abstract(model)
  else:
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))["params"]
  shardings = llm.param_shardings(shapes, mesh)
  return jax.tree.map(lambda s, sh: sds(s.shape, jnp.float32, sh), shapes, shardings)


def abstract_state(params, tx, mesh):
  """TrainState of ShapeDtypeStructs: Adam's moments take their param's sharding, counters are replicated."""
  rep = replicated(mesh)
  opt_shapes = jax.eval_shape(tx.init, params)
  opt = optax.tree_map_params(tx, lambda s, p: sds(s.shape, s.dtype, p.sharding), opt_shapes, params,
                              transform_non_params=lambda s: sds(s.shape, s.dtype, rep))
  return core.TrainState(step=sds((), jnp.int32, rep), params=params, opt_state=opt,
                         rng=sds((2,), jnp.uint32, rep))


def abstract_batch(cfg, mesh, rows, p, t, image: bool):
  rb = batch_sharding(mesh)
  batch = {"prompt": sds((rows, p), jnp.int32, rb), "prompt_mask": sds((rows, p), jnp.int32, rb),
           "completion": sds((rows, t), jnp.int32, rb), "mask": sds((rows, t), jnp.bool_, rb),
           "advantages": sds((rows,), jnp.float32, rb), "ref_logp": sds((rows, t), jnp.float32, rb)}
  if image:
    v = cfg.vision
    batch.update(positions=sds((rows, 3, p + t), jnp.int32, rb),
                 pixel_values=sds((rows, IMAGE_PATCHES, v.patch_dim), jnp.float32, rb),
                 patch_pos=sds((rows, IMAGE_PATCHES, 2), jnp.int32, rb))
  return batch


def logp_fns(model, group, bounded: bool):
  """(update's log-prob fn, reference's): shared-prefix + chunked head when bounded, else one plain pass."""
  make = vlm.vlm_logp_fn if isinstance(model, vlm.Qwen2VL) else rl.lm_logp_fn
  if not bounded:
    return make(model, 1.0), make(model, 1.0)
  return make(model, 1.0, group_size=group, with_entropy=True), make(model, 1.0, group_size=group)


def nbytes_per_device(tree) -> float:
  total = 0
  for x in jax.tree.leaves(tree):
    shard = x.sharding.shard_shape(x.shape)
    total += int(np.prod(shard, dtype=np.int64)) * np.dtype(x.dtype).itemsize
  return total


def peak(compiled) -> tuple[float, dict]:
  m = compiled.memory_analysis()
  parts = {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
           "aliased": m.alias_size_in_bytes, "temporaries": m.temp_size_in_bytes}
  return parts["arguments"] + parts["outputs"] - parts["aliased"] + parts["temporaries"], parts


def plan(name: str, plain: bool) -> dict:
  cfg, devices, prompts, group, p, t, micro, image = CONFIGS[name]
  mesh = core.make_mesh({"data": 1, "fsdp": devices, "model": 1}, devices=jax.devices()[:devices])
  rows = prompts * group
  tx = rl.grpo_optimizer(1e-6, 1000)
  out: dict = {}
  variants = [("", True)] + ([("plain_", False)] if plain else [])
  for prefix, bounded in variants:
    model = build_model(cfg, bounded)
    params = abstract_params(model, mesh)
    state = abstract_state(params, tx, mesh)
    state_sh = jax.tree.map(lambda x: x.sharding, state)
    batch = abstract_batch(cfg, mesh, rows, p, t, image)
    update_fn, ref_fn = logp_fns(model, group, bounded)
    update = rl.make_grpo_step(update_fn, tx, beta=BETA, micro_batch_size=micro if bounded else 0,
                               group_size=group, state_sharding=state_sh, mesh=mesh)
    t0 = time.perf_counter()
    update_peak, parts = peak(update.lower(state, batch, sds((2,), jnp.uint32, replicated(mesh))).compile())
    ref_bytes = nbytes_per_device(params)   # the frozen reference, float32, FSDP like the policy
    out[f"{prefix}update_gb"] = (update_peak + ref_bytes) / GB
    print(f"{name}: {prefix}update {out[f'{prefix}update_gb']:.1f} GB/device "
          f"({', '.join(f'{k} {v / GB:.1f}' for k, v in parts.items())}; + reference params {ref_bytes / GB:.1f}) "
          f"compiled in {time.perf_counter() - t0:.0f} s", flush=True)
    if not bounded:
      continue
    out["state_gb"] = nbytes_per_device(state) / GB
    out["reference_params_gb"] = ref_bytes / GB
    opt_bytes = nbytes_per_device(state.opt_state)
    reference = jax.jit(lambda prm, b: rl.micro_map(ref_fn, prm, b, micro_batch_size=micro, group_size=group,
                                                    mesh=mesh))
    ref_peak, _ = peak(reference.lower(params, batch).compile())
    out["reference_gb"] = (ref_peak + nbytes_per_device(state)) / GB   # the policy's state stays resident
    out["rollout_gb"] = (rollout_peak(model, params, mesh, prompts, group, p, t, image) + opt_bytes + ref_bytes) / GB
    print(f"{name}: reference pass {out['reference_gb']:.1f} GB/device, rollout {out['rollout_gb']:.1f} GB/device",
          flush=True)
  out["peak_gb_per_device"] = max(out["update_gb"], out["reference_gb"], out["rollout_gb"])
  out["fits_80gb"] = bool(out["peak_gb_per_device"] < 70)
  return out


def rollout_peak(model, params, mesh, prompts, group, p, t, image) -> float:
  """The sampler's compiled peak: prompts prefilled once, the cache repeated ``group`` times, rows split."""
  rb = batch_sharding(mesh)
  kw = dict(max_new_tokens=t, num_samples=group, eos_ids=(1,), rows=rb)
  args = [model, params, sds((prompts, p), jnp.int32, rb), sds((prompts, p), jnp.int32, rb),
          sds((2,), jnp.uint32, replicated(mesh))]
  if image:
    v = model.config.vision
    inputs = {"pixel_values": sds((prompts, IMAGE_PATCHES, v.patch_dim), jnp.float32, rb),
              "patch_pos": sds((prompts, IMAGE_PATCHES, 2), jnp.int32, rb), "patch_seg": None, "image_mask": None}
    kw.update(prompt_positions=sds((3, prompts, p), jnp.int32, NamedSharding(mesh, P(None, ("data", "fsdp")))),
              position_offset=sds((prompts,), jnp.int32, rb), model_inputs=inputs)
  return peak(llm.generate.lower(*args, **kw).compile())[0]


def tiny(steps: int = 5) -> dict:
  """CPU step time of a small model's update, plain vs micro-batched + remat + chunked head."""
  cfg = llm.LMConfig(family="llama", vocab_size=8192, hidden_size=256, intermediate_size=688, num_layers=4,
                     num_heads=8, num_kv_heads=4, head_dim=32)
  base = llm.Decoder(cfg)
  params = base.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  group, rows, p, t = 8, 32, 64, 128
  rng = np.random.default_rng(0)
  batch = {"prompt": jnp.asarray(np.repeat(rng.integers(5, 8000, (rows // group, p)), group, 0), jnp.int32),
           "prompt_mask": jnp.ones((rows, p), jnp.int32),
           "completion": jnp.asarray(rng.integers(5, 8000, (rows, t)), jnp.int32),
           "mask": jnp.asarray(np.arange(t)[None] < rng.integers(t // 2, t + 1, (rows, 1))),
           "advantages": jnp.asarray(rng.normal(size=rows), jnp.float32)}
  out = {}
  tx = rl.grpo_optimizer(1e-5, 100)
  for name, bounded in (("plain", False), ("bounded", True)):
    model = llm.with_options(base, remat="full" if bounded else "none")
    fn = rl.lm_logp_fn(model, 1.0, group_size=group, chunk=2048) if bounded else rl.lm_logp_fn(model, 1.0)
    update = rl.make_grpo_step(fn, tx, micro_batch_size=group * 2 if bounded else 0, group_size=group)
    state = core.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                            rng=jax.random.PRNGKey(0))
    compiled = update.lower(state, batch, jax.random.PRNGKey(0)).compile()
    out[f"tiny/peak_mb_{name}"] = peak(compiled)[0] / 1e6
    state = jax.tree.map(jnp.copy, state)
    state, m = update(state, batch, jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for _ in range(steps):
      state, m = update(state, batch, jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    out[f"tiny/step_ms_{name}"] = (time.perf_counter() - t0) / steps * 1e3
  out["tiny/bounded_over_plain"] = out["tiny/step_ms_bounded"] / out["tiny/step_ms_plain"]
  out["tiny/peak_bounded_over_plain"] = out["tiny/peak_mb_bounded"] / out["tiny/peak_mb_plain"]
  print(f"tiny update on CPU: plain {out['tiny/step_ms_plain']:.0f} ms ({out['tiny/peak_mb_plain']:.0f} MB), "
        f"micro-batched + remat + chunked {out['tiny/step_ms_bounded']:.0f} ms ({out['tiny/peak_mb_bounded']:.0f} MB):"
        f" {out['tiny/bounded_over_plain']:.2f}x the time, {out['tiny/peak_bounded_over_plain']:.2f}x the memory")
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--json", default="")
  ap.add_argument("--only", default=",".join(CONFIGS))
  ap.add_argument("--plain", default="qwen2vl2b_1dev", help="configs whose plain (unbounded) update is compiled too")
  ap.add_argument("--no-tiny", action="store_true")
  args = ap.parse_args()
  figures: dict = {}
  for name in filter(None, args.only.split(",")):
    for key, value in plan(name, plain=name in args.plain.split(",")).items():
      figures[f"{name}/{key}"] = value
    print(f"{name}: peak {figures[f'{name}/peak_gb_per_device']:.1f} GB per device "
          f"(target < 70 GB: {'met' if figures[f'{name}/fits_80gb'] else 'MISSED'})", flush=True)
  if not args.no_tiny:
    figures.update(tiny())
  write_figures(args.json, figures)


if __name__ == "__main__":
  main()
