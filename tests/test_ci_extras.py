"""CI installs the parity extra, so that no parity test against a torch reference skips there."""

import os

import pytest


def test_torch_imports_under_ci():
  if os.environ.get("CI") != "true":
    pytest.skip("only CI (CI=true) must have the parity extra; locally it is optional")
  import torch
  assert torch.tensor([1.0, 2.0]).sum().item() == 3.0
