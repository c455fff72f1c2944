"""Reading torch.save checkpoints without torch: every dtype, strided and offset views, nested containers, and a
Lightning-style object the reader leaves inert."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxmed.io import load_torch_checkpoint  # noqa: E402


class Hparams:   # stands for a class the reader must not import or run
  def __init__(self):
    self.lr = 1e-6


def test_tensors_come_back_equal_and_other_objects_stay_inert(tmp_path):
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  state = {"w": torch.randn(3, 5), "d": torch.randn(2, dtype=torch.float64), "h": torch.randn(4).half(),
           "i": torch.arange(5), "b": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
           "transposed": base.t(), "sliced": base[1:, 2:5], "bf": torch.tensor([1.5, -2.25]).bfloat16(),
           "param": torch.nn.Parameter(torch.ones(2, 2))}
  path = tmp_path / "model.ckpt"
  torch.save({"state_dict": state, "epoch": 7, "hyper_parameters": Hparams(), "nested": [base[0]]}, path)
  out = load_torch_checkpoint(str(path))
  assert out["epoch"] == 7 and not hasattr(out["hyper_parameters"], "lr")
  for k, v in state.items():
    ref = v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
    np.testing.assert_array_equal(out["state_dict"][k], ref, err_msg=k)
  np.testing.assert_array_equal(out["nested"][0], base[0].numpy())


def test_a_file_that_is_not_a_torch_zip_gets_one_clear_error(tmp_path):
  (tmp_path / "x.ckpt").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match=r"x\.ckpt.*not a PyTorch zip checkpoint"):
    load_torch_checkpoint(str(tmp_path / "x.ckpt"))
  with pytest.raises(FileNotFoundError, match="missing.ckpt"):
    load_torch_checkpoint(str(tmp_path / "missing.ckpt"))
