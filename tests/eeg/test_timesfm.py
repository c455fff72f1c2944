"""TimesFM-style decoder: causality, RevIN equivariance, next-patch learning, the published state-dict layout."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmed import eeg
from jaxmed.eeg import timesfm

MODEL = eeg.TimesFMDecoder(input_patch=8, output_patch=16, dim=16, depth=2, heads=2, num_quantiles=3)


def _x(n=3, length=64, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal((n, length)).cumsum(-1), jnp.float32)


def test_forecasts_are_causal_and_shaped():
  x = _x()
  params = MODEL.init(jax.random.PRNGKey(0), x)
  f, h = MODEL.apply(params, x)
  assert f.shape == (3, 8, 16, 4) and h.shape == (3, 8, 16)
  f2, _ = MODEL.apply(params, x.at[:, 40:].add(10.0))              # change patches 5.. only
  np.testing.assert_allclose(np.asarray(f2[:, :5]), np.asarray(f[:, :5]), atol=1e-4)
  assert np.abs(np.asarray(f2[:, 5:] - f[:, 5:])).max() > 1e-3


def test_revin_makes_forecasts_affine_equivariant():
  x = _x(seed=1)
  params = MODEL.init(jax.random.PRNGKey(1), x)
  f, _ = MODEL.apply(params, x)
  g, _ = MODEL.apply(params, 25.0 * x - 3.0)
  np.testing.assert_allclose(np.asarray(g), 25.0 * np.asarray(f) - 3.0, rtol=1e-3, atol=1e-2)


def test_next_patch_pretraining_beats_persistence_on_sines():
  t = np.arange(96)
  x = jnp.asarray(np.stack([np.sin(2 * np.pi * t / p + ph) for p, ph in zip(np.linspace(6, 30, 32),
                                                                             np.linspace(0, 6, 32))]), jnp.float32)
  model = eeg.TimesFMDecoder(8, 16, 32, 2, 2, num_quantiles=0)
  params = model.init(jax.random.PRNGKey(0), x)
  tx = optax.adam(3e-3)
  opt = tx.init(params)
  step = jax.jit(lambda p, o: (lambda lg: (optax.apply_updates(p, tx.update(lg[1], o)[0]), tx.update(lg[1], o)[1],
                                            lg[0]))(jax.value_and_grad(lambda q: eeg.next_patch_loss(model, q, x))(p)))
  first = float(eeg.next_patch_loss(model, params, x))
  for _ in range(300):
    params, opt, loss = step(params, opt)
  # persistence (repeat the last value of the context) in the same normalised scale
  mu, sigma = eeg.revin_stats(x, 8)
  z = np.asarray((x - mu) / sigma)
  persistence = np.mean([(z[:, (i + 1) * 8:(i + 1) * 8 + 16] - z[:, (i + 1) * 8 - 1:(i + 1) * 8]) ** 2
                         for i in range(12) if (i + 1) * 8 + 16 <= 96])
  assert float(loss) < 0.25 * persistence and float(loss) < 0.1 * first


def _to_state_dict(params, depth):
  """Our params written back in TimesFM's published PyTorch names (weights as [out, in])."""
  p = params["params"]
  sd = {"freq_emb.weight": p["freq_emb"]["embedding"]}
  lin = lambda pre, d: {f"{pre}.weight": np.asarray(d["kernel"]).T, f"{pre}.bias": np.asarray(d["bias"])}  # noqa: E731
  for blk in ("input_ff_layer", "horizon_ff_layer"):
    sd.update(lin(f"{blk}.hidden_layer.0", p[blk]["hidden_layer"]))
    sd.update(lin(f"{blk}.output_layer", p[blk]["output_layer"]))
    sd.update(lin(f"{blk}.residual_layer", p[blk]["residual_layer"]))
  for i in range(depth):
    q, pre = p[f"layers_{i}"], f"stacked_transformer.layers.{i}"
    sd[f"{pre}.input_layernorm.weight"] = q["input_layernorm"]["weight"]
    sd.update(lin(f"{pre}.self_attn.qkv_proj", q["self_attn"]["qkv_proj"]))
    sd.update(lin(f"{pre}.self_attn.o_proj", q["self_attn"]["o_proj"]))
    sd[f"{pre}.self_attn.scaling"] = q["self_attn"]["scaling"]
    sd[f"{pre}.mlp.layer_norm.weight"] = q["mlp_layer_norm"]["scale"]
    sd[f"{pre}.mlp.layer_norm.bias"] = q["mlp_layer_norm"]["bias"]
    sd.update(lin(f"{pre}.mlp.gate_proj", q["mlp_gate_proj"]))
    sd.update(lin(f"{pre}.mlp.down_proj", q["mlp_down_proj"]))
  return {k: np.ascontiguousarray(v) for k, v in sd.items()}   # safetensors writes raw buffers


def test_state_dict_layout_round_trip_and_errors(tmp_path):
  from safetensors.numpy import save_file
  x = _x(seed=2)
  params = MODEL.init(jax.random.PRNGKey(3), x)
  noise = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda a: a + 0.01 * noise.standard_normal(a.shape).astype(np.float32), params)
  sd = _to_state_dict(params, MODEL.depth)
  assert sd["input_ff_layer.hidden_layer.0.weight"].shape == (16, 2 * 8)     # [model dims, 2 * input patch]
  assert sd["stacked_transformer.layers.0.self_attn.qkv_proj.weight"].shape == (48, 16)
  assert sd["horizon_ff_layer.output_layer.weight"].shape == (16 * 4, 16)    # output patch x (1 + quantiles)
  path = str(tmp_path / "timesfm.safetensors")
  save_file(sd, path)
  loaded = eeg.load_timesfm_safetensors(path, MODEL)
  np.testing.assert_allclose(np.asarray(MODEL.apply(loaded, x)[0]), np.asarray(MODEL.apply(params, x)[0]),
                             rtol=1e-5, atol=1e-5)
  with pytest.raises(KeyError, match="'stacked_transformer.layers.1.self_attn.scaling' is missing"):
    timesfm.params_from_timesfm_state_dict({k: v for k, v in sd.items() if "layers.1.self_attn.scaling" not in k}, 2)
  with pytest.raises(KeyError, match="unexpected keys"):
    timesfm.params_from_timesfm_state_dict(sd, 1)
  wide = eeg.TimesFMDecoder(8, 16, 16, 2, 2, num_quantiles=9)
  with pytest.raises(ValueError, match="horizon_ff_layer.*output_layer.*expects"):
    eeg.load_timesfm_safetensors(path, wide)
