"""LaBraM against braindecode's ``Labram`` (neural-tokenizer mode, random weights, a channel subset by name)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed.eeg.labram import load_braindecode_labram


def test_braindecode_labram_parity(tmp_path):
  torch = pytest.importorskip("torch")
  labram = pytest.importorskip("braindecode.models.labram")
  from safetensors.torch import save_file
  torch.manual_seed(0)
  ref = labram.Labram(n_times=800, n_chans=5, n_outputs=3, sfreq=200, num_layers=2, num_heads=4).eval()
  with torch.no_grad():                                      # the layer scales start at 0.1; make them matter
    for i in range(2):
      ref.blocks[i].gamma_1.normal_(0.5, 0.2)
      ref.blocks[i].gamma_2.normal_(0.5, 0.2)
  save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "labram.safetensors"))
  model, variables = load_braindecode_labram(str(tmp_path / "labram.safetensors"), heads=4)
  assert (model.layers, model.patch, model.max_patches, model.num_positions) == (2, 200, 4, 129)
  names = ["FP1", "CZ", "O2", "T7", "PZ"]
  index = np.array([[n.upper() for n in labram.LABRAM_CHANNEL_ORDER].index(n) for n in names])
  x = np.random.default_rng(0).standard_normal((2, 5, 800)).astype(np.float32)
  with torch.no_grad():
    want = ref(torch.from_numpy(x), ch_names=names).numpy()
  got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x), jnp.asarray(index)))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  fresh = model.init(jax.random.PRNGKey(0), jnp.asarray(x), jnp.asarray(index))
  assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(variables)
