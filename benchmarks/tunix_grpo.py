"""Tunix's GRPOLearner on a jaxmed-exported Llama checkpoint: the JAX peer in ``benchmarks/grpo.py``.

Runs in its own environment (``google-tunix`` 0.1.7 pins jax / flax / transformers versions of its own):

  python -m venv /tmp/tunix-venv && /tmp/tunix-venv/bin/pip install google-tunix==0.1.7
  python benchmarks/grpo.py --tunix-python /tmp/tunix-venv/bin/python ...

``benchmarks/grpo.py`` calls this script as
``<python> benchmarks/tunix_grpo.py SPEC_JSON OUT_JSON``. SPEC_JSON holds ``model_dir`` (a Llama checkpoint
written by ``jaxmed.llm.save_pretrained``), ``prompts`` (rendered chat texts), ``group``, ``new_tokens``,
``steps``, ``runs``, ``dtype`` ("float32" | "bfloat16"), ``lr``; OUT_JSON gets the median over runs of the
mean seconds per step of ``rollout``, ``reference`` and ``update`` (the rest of the step: the actor's
forward, backward and optimizer, plus rewards and advantages).

The sizes match jaxmed's side: the same prompts, ``num_generations = group``, exactly ``new_tokens`` new
tokens (no EOS: ``eos_tokens`` holds an id outside the vocabulary), beta
0.04 (the reference model's forward is part of the step), epsilon 0.2, one iteration per batch, the
vanilla rollout engine (Tunix's own JAX sampler with a KV cache), float32 or bfloat16 compute with the
same dtype for the parameters. Rewards are random numbers. Step times are the intervals between the ends
of successive actor updates, after one untimed (compiling) step.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import transformers
from tunix.models.llama3 import model as llama_lib
from tunix.models.llama3 import params as llama_params
from tunix.rl import rl_cluster as rl_cluster_lib
from tunix.rl.grpo import grpo_learner
from tunix.rl.rollout import base_rollout


def llama_config(model_dir: str) -> llama_lib.ModelConfig:
  with open(f"{model_dir}/config.json") as f:
    hf = json.load(f)
  if hf.get("model_type") != "llama":
    raise ValueError(f"{model_dir}/config.json: model_type {hf.get('model_type')!r}; this runner loads Llama only")
  return llama_lib.ModelConfig(
      num_layers=hf["num_hidden_layers"], vocab_size=hf["vocab_size"], embed_dim=hf["hidden_size"],
      hidden_dim=hf["intermediate_size"], num_heads=hf["num_attention_heads"],
      head_dim=hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"],
      num_kv_heads=hf["num_key_value_heads"], rope_theta=int(hf.get("rope_theta", 10000)),
      norm_eps=hf.get("rms_norm_eps", 1e-5), weight_tying=bool(hf.get("tie_word_embeddings", False)))


def _arrays(out) -> list:
  """The jax arrays in a call's result (a RolloutOutput dataclass, an array, a pytree), to wait for."""
  if dataclasses.is_dataclass(out):
    out = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
  return [x for x in jax.tree.leaves(out) if isinstance(x, jax.Array)]


def one_run(spec: dict, mesh) -> dict[str, float]:
  dtype = jnp.bfloat16 if spec["dtype"] == "bfloat16" else jnp.float32
  cfg = llama_config(spec["model_dir"])
  actor = llama_params.create_model_from_safe_tensors(spec["model_dir"], cfg, mesh, dtype=dtype)
  reference = llama_params.create_model_from_safe_tensors(spec["model_dir"], cfg, mesh, dtype=dtype)
  tok = transformers.AutoTokenizer.from_pretrained(spec["model_dir"])
  prompt_len = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in spec["prompts"])
  rollout = base_rollout.RolloutConfig(
      max_tokens_to_generate=spec["new_tokens"], max_prompt_length=prompt_len, temperature=1.0, top_p=1.0,
      kv_cache_size=prompt_len + spec["new_tokens"] + 8, eos_tokens=[cfg.vocab_size + 7], data_type=dtype)
  n = len(spec["prompts"])
  training = rl_cluster_lib.RLTrainingConfig(
      actor_optimizer=optax.adamw(spec["lr"]), eval_every_n_steps=10**9, max_steps=spec["steps"] + 1,
      mini_batch_size=n, train_micro_batch_size=n, rollout_micro_batch_size=n, compute_logps_micro_batch_size=n)
  roles = rl_cluster_lib.Role
  cluster = rl_cluster_lib.RLCluster(
      actor=actor, reference=reference, tokenizer=tok,
      cluster_config=rl_cluster_lib.ClusterConfig(
          role_to_mesh={roles.ACTOR: mesh, roles.REFERENCE: mesh, roles.ROLLOUT: mesh},
          rollout_engine="vanilla", offload_to_cpu=False, training_config=training, rollout_config=rollout))
  algo = grpo_learner.GRPOConfig(num_generations=spec["group"], num_iterations=1, beta=0.04, epsilon=0.2)
  rng = np.random.default_rng(0)

  def random_reward(prompts, completions, **kw):
    return list(rng.normal(size=len(completions)))

  learner = grpo_learner.GRPOLearner(rl_cluster=cluster, algo_config=algo, reward_fns=[random_reward])
  parts = {"rollout": [], "reference": [], "ends": []}

  def timed(obj, name, key):
    inner = getattr(obj, name)

    def wrapper(*a, **k):
      t = time.perf_counter()
      out = inner(*a, **k)
      jax.block_until_ready(_arrays(out))
      if key == "ends":
        parts["ends"].append(time.perf_counter())
      else:
        parts[key].append(time.perf_counter() - t)
      return out
    setattr(obj, name, wrapper)

  timed(cluster, "generate", "rollout")
  timed(cluster, "get_ref_per_token_logps", "reference")
  timed(cluster, "update_actor", "ends")
  data = [{"prompts": np.asarray(spec["prompts"])} for _ in range(spec["steps"] + 1)]
  learner.train(data)
  jax.effects_barrier()
  ends = np.asarray(parts["ends"])
  step = np.diff(ends)   # the steps after the first (compiling) one
  if len(step) < spec["steps"]:
    raise RuntimeError(f"Tunix ran {len(ends)} actor updates, expected {spec['steps'] + 1}")
  rollout_s = float(np.mean(parts["rollout"][1:]))
  reference_s = float(np.mean(parts["reference"][1:]))
  return {"rollout": rollout_s, "reference": reference_s, "update": float(step.mean()) - rollout_s - reference_s}


def main():
  spec_path, out_path = sys.argv[1], sys.argv[2]
  with open(spec_path) as f:
    spec = json.load(f)
  mesh = jax.make_mesh((1, 1), ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
  runs = [one_run(spec, mesh) for _ in range(spec["runs"])]
  out = {p: float(np.median([r[p] for r in runs])) for p in ("rollout", "reference", "update")}
  out["tunix_version"] = importlib.metadata.version("google-tunix")
  with open(out_path, "w") as f:
    json.dump(out, f)


if __name__ == "__main__":
  main()
