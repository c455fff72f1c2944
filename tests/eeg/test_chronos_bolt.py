"""Chronos-Bolt against the chronos-forecasting package's model (a small T5 config, random weights)."""

import numpy as np
import pytest

from jaxmed.eeg.chronos_bolt import load_chronos_bolt, relative_position_bucket


def test_relative_position_buckets():
  rel = np.arange(-200, 201)
  two = relative_position_bucket(rel, True)
  assert two[200] == 0 and two[201] == 17 and two[199] == 1                 # 0, +1 (second half), -1
  assert two.max() == 31 and two.min() == 0 and np.all(np.diff(two[200:]) >= 0)
  one = relative_position_bucket(rel, False)
  assert np.all(one[200:] == 0) and one[199] == 1 and one.max() == 31        # causal: only the past has offsets
  assert relative_position_bucket(np.array([7, 8, 127, 10_000]), False).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("gated", [False, True], ids=["relu", "gated-gelu"])
def test_chronos_bolt_parity(tmp_path, gated):
  torch = pytest.importorskip("torch")
  chronos = pytest.importorskip("chronos.chronos_bolt")
  from transformers import T5Config
  config = T5Config(d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2, num_decoder_layers=1,
                    feed_forward_proj="gated-gelu" if gated else "relu", dropout_rate=0.0, decoder_start_token_id=0,
                    pad_token_id=0,
                    chronos_config={"context_length": 64, "input_patch_size": 8, "input_patch_stride": 8,
                                    "prediction_length": 16, "quantiles": [0.1, 0.5, 0.9], "use_reg_token": True})
  torch.manual_seed(0)
  ref = chronos.ChronosBoltModelForForecasting(config).eval()
  ref.save_pretrained(str(tmp_path))
  model, variables = load_chronos_bolt(str(tmp_path))
  rng = np.random.default_rng(0)
  context = (5.0 + 3.0 * rng.standard_normal((2, 60))).astype(np.float32)   # 60: left-padded to 64
  context[1, :20] = np.nan                                                  # missing values mask whole patches
  context[0, 33] = np.nan
  with torch.no_grad():
    want = ref(torch.from_numpy(context)).quantile_preds.numpy()
  got, states = model.apply(variables, context)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-4, rtol=1e-4)
  assert states.shape == (2, 8 + 1, 32)
