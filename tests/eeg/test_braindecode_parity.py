"""BIOT and EEGNet against braindecode's modules (BIOT: the official architecture with linear attention), random weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import eeg
from jaxmed.eeg.biot import linear_attention, load_braindecode_biot, sinusoidal_positions


def test_linear_attention_closed_form_and_token_permutation_equivariance():
  rng = np.random.default_rng(0)
  q, k, v = (jnp.asarray(rng.standard_normal((1, 2, 7, 4)), jnp.float32) for _ in range(3))
  out = np.asarray(linear_attention(q, k, v))
  qs = np.exp(q) / np.exp(q).sum(-1, keepdims=True) / 2.0                       # d = 4: scale 1/2
  ks = np.exp(k) / np.exp(k).sum(-2, keepdims=True)
  np.testing.assert_allclose(out, qs @ (np.swapaxes(ks, -1, -2) @ np.asarray(v)), rtol=1e-5, atol=1e-6)
  perm = rng.permutation(7)
  np.testing.assert_allclose(np.asarray(linear_attention(q[:, :, perm], k[:, :, perm], v[:, :, perm])), out[:, :, perm],
                             rtol=1e-5, atol=1e-6)
  pe = sinusoidal_positions(3, 6)
  np.testing.assert_allclose(pe[1], [np.sin(1), np.cos(1), np.sin(10 ** (-4 / 3)), np.cos(10 ** (-4 / 3)),
                                     np.sin(10 ** (-8 / 3)), np.cos(10 ** (-8 / 3))], rtol=1e-5)


def test_braindecode_biot_parity(tmp_path):
  torch = pytest.importorskip("torch")
  models = pytest.importorskip("braindecode.models")
  from safetensors.torch import save_file
  torch.manual_seed(0)
  ref = models.BIOT(n_outputs=3, n_chans=4, n_times=800, sfreq=200, embed_dim=32, num_heads=4, num_layers=2).eval()
  state = {k: v.contiguous() for k, v in ref.state_dict().items()}
  save_file(state, str(tmp_path / "biot.safetensors"))
  model, variables = load_braindecode_biot(str(tmp_path / "biot.safetensors"), heads=4)
  assert (model.dim, model.depth, model.num_channels, model.n_fft, model.hop) == (32, 2, 4, 200, 100)
  x = np.random.default_rng(1).standard_normal((2, 4, 800)).astype(np.float32)
  with torch.no_grad():
    want = ref(torch.from_numpy(x)).numpy()
  got = np.asarray(model.apply(variables, jnp.asarray(x)))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  fresh = model.init(jax.random.PRNGKey(0), jnp.asarray(x))                       # same tree as a fresh init
  assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(variables)
  del state["encoder.transformer.layers.layers.1.0.fn.to_k.weight"]
  save_file(state, str(tmp_path / "broken.safetensors"))
  with pytest.raises(KeyError, match=r"broken.safetensors: braindecode BIOT tensor 'encoder.transformer.layers"):
    load_braindecode_biot(str(tmp_path / "broken.safetensors"), heads=4)
  assert eeg.BIOT is type(model)


def test_braindecode_eegnet_parity():
  torch = pytest.importorskip("torch")
  models = pytest.importorskip("braindecode.models")
  from jaxmed.eeg.eegnet import params_from_braindecode_eegnet
  torch.manual_seed(0)
  ref = models.EEGNet(n_chans=4, n_outputs=3, n_times=256, kernel_length=64, final_layer_with_constraint=False)
  with torch.no_grad():                                       # non-trivial population statistics
    for name in ("bnorm_temporal", "bnorm_1", "bnorm_2"):
      bn = getattr(ref, name)
      bn.running_mean.normal_(0, 0.3)
      bn.running_var.uniform_(0.5, 2.0)
      bn.weight.normal_(1, 0.2)
      bn.bias.normal_(0, 0.2)
    ref.conv_spatial.parametrizations.weight.original.mul_(3.0)   # some spatial kernels above the max-norm
  ref.eval()
  state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  model = eeg.EEGNet(3, 64, padding="symmetric", dense_max_norm=None)
  variables = params_from_braindecode_eegnet(state)
  x = np.random.default_rng(2).standard_normal((2, 4, 256)).astype(np.float32)
  with torch.no_grad():
    want = ref(torch.from_numpy(x)).numpy()
  got = np.asarray(model.apply(variables, jnp.asarray(x), train=False))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  fresh = model.init(jax.random.PRNGKey(0), jnp.asarray(x))
  assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(variables)
