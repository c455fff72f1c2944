"""TimesFM 2.5 against the ``timesfm`` package's torch module (a small config, random weights)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed.eeg.timesfm25 import load_timesfm25, rotary


def test_rotary_is_a_rotation_that_depends_on_relative_position():
  rng = np.random.default_rng(0)
  q, k = (jnp.asarray(rng.standard_normal((1, 5, 2, 8)), jnp.float32) for _ in range(2))
  pos = jnp.arange(5.0)[None]
  rq = rotary(q, pos)
  np.testing.assert_allclose(np.linalg.norm(rq, axis=-1), np.linalg.norm(q, axis=-1), rtol=1e-5)
  dots = jnp.einsum("bnhd,bmhd->bhnm", rq, rotary(k, pos))
  shifted = jnp.einsum("bnhd,bmhd->bhnm", rotary(q, pos + 7.0), rotary(k, pos + 7.0))
  np.testing.assert_allclose(np.asarray(dots), np.asarray(shifted), rtol=1e-4, atol=1e-5)


def _small_torch_module(torch):
  tf = pytest.importorskip("timesfm.timesfm_2p5.timesfm_2p5_torch")
  base = pytest.importorskip("timesfm.timesfm_2p5.timesfm_2p5_base")
  cfg = base.TimesFM_2p5_200M_Definition()
  d = 64
  xf = dataclasses.replace(cfg.stacked_transformers.transformer, model_dims=d, hidden_dims=96, num_heads=4)
  small = dataclasses.replace(
      cfg, tokenizer=dataclasses.replace(cfg.tokenizer, hidden_dims=d, output_dims=d),
      stacked_transformers=dataclasses.replace(cfg.stacked_transformers, num_layers=2, transformer=xf),
      output_projection_point=dataclasses.replace(cfg.output_projection_point, input_dims=d, hidden_dims=d),
      output_projection_quantiles=dataclasses.replace(cfg.output_projection_quantiles, input_dims=d, hidden_dims=d))

  class Small(tf.TimesFM_2p5_200M_torch_module):
    config = small

  module = Small().eval()
  with torch.no_grad():                           # the RMSNorm scales and per-dim scales start at zero
    for name, p in module.named_parameters():
      p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 1 else 0.2))
  return module


def test_timesfm25_forward_parity_with_left_padding(tmp_path):
  torch = pytest.importorskip("torch")
  from safetensors.torch import save_file
  torch.manual_seed(0)
  ref = _small_torch_module(torch)
  save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "model.safetensors"))
  model, variables = load_timesfm25(str(tmp_path / "model.safetensors"))
  assert (model.patch, model.dim, model.layers, model.heads, model.hidden) == (32, 64, 2, 4, 96)
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 6, 32)).astype(np.float32)
  masks = np.zeros((2, 6, 32), bool)
  masks[1, :2] = True                              # the second series is left-padded by two patches
  x[masks] = 0.0
  with torch.no_grad():
    (_, emb, point, quant), _ = ref(torch.from_numpy(x), torch.from_numpy(masks))
  got_point, got_quant, got_emb = jax.jit(model.apply)(variables, jnp.asarray(x), jnp.asarray(masks))
  valid = ~masks[..., -1]                          # outputs at padded patches are undefined (no key to attend to)
  np.testing.assert_allclose(np.asarray(got_emb)[valid], emb.numpy()[valid], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(got_point).reshape(2, 6, -1)[valid], point.numpy()[valid], atol=1e-4,
                             rtol=1e-4)
  np.testing.assert_allclose(np.asarray(got_quant).reshape(2, 6, -1)[valid], quant.numpy()[valid], atol=1e-4,
                             rtol=1e-4)


def test_a_broken_timesfm25_file_names_the_tensor(tmp_path):
  torch = pytest.importorskip("torch")
  from safetensors.torch import save_file
  state = {k: v.contiguous() for k, v in _small_torch_module(torch).state_dict().items()}
  del state["stacked_xf.1.attn.per_dim_scale.per_dim_scale"]
  save_file(state, str(tmp_path / "broken.safetensors"))
  with pytest.raises(KeyError, match=r"broken.safetensors: TimesFM 2.5 tensor 'stacked_xf.1.attn.per_dim_scale"):
    load_timesfm25(str(tmp_path / "broken.safetensors"))
