"""CI installs the parity extra, so that no parity test against a torch reference skips there."""

import os

import pytest


def test_torch_imports_under_ci():
  if os.environ.get("CI") != "true":
    pytest.skip("only CI (CI=true) must have the parity extra; locally it is optional")
  import torch
  assert torch.tensor([1.0, 2.0]).sum().item() == 3.0


def test_fastmri_and_ismrmrd_import_under_ci():
  """The MRI metric oracle (fastmri, parity extra) and the ISMRMRD reader's package (test extra)."""
  if os.environ.get("CI") != "true":
    pytest.skip("only CI (CI=true) must have the parity and test extras; locally they are optional")
  import fastmri.evaluate
  import ismrmrd
  import numpy as np
  gt = np.ones((1, 4, 4))
  assert float(fastmri.evaluate.nmse(gt, gt)) == 0.0
  assert callable(ismrmrd.Dataset) and hasattr(ismrmrd, "ACQ_IS_NOISE_MEASUREMENT")


def test_torchstain_imports_under_ci():
  """The Macenko oracle (torchstain's numpy backend, parity extra) for jaxmed.pathology.stain."""
  if os.environ.get("CI") != "true":
    pytest.skip("only CI (CI=true) must have the parity extra; locally it is optional")
  from torchstain.numpy.normalizers.macenko import NumpyMacenkoNormalizer
  assert NumpyMacenkoNormalizer().maxCRef.shape == (2,)


def test_eeg_references_import_under_ci():
  """braindecode (BIOT / EEGNet parity), timesfm (TimesFM 2.5), chronos-forecasting (Chronos-Bolt) and eeglabio
  (EEGLAB .set export)."""
  if os.environ.get("CI") != "true":
    pytest.skip("only CI (CI=true) must have the parity and test extras; locally they are optional")
  import braindecode.models
  import chronos.chronos_bolt
  import eeglabio
  import timesfm.timesfm_2p5.timesfm_2p5_torch as tfm
  assert hasattr(braindecode.models, "BIOT") and hasattr(braindecode.models, "EEGNet")
  assert hasattr(tfm, "TimesFM_2p5_200M_torch_module") and eeglabio.__name__ == "eeglabio"
  assert hasattr(chronos.chronos_bolt, "ChronosBoltModelForForecasting")
