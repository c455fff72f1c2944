"""Test setup: 8 simulated CPU devices, float32, opt-in strict dtype promotion, fixed seeds.

XLA_FLAGS must be set before jax is imported anywhere, which is why this
happens at module import time of the conftest.
"""

import os
import random

# The suite is compile-bound (hundreds of small programs, each run a few steps): XLA's cheaper CPU
# code generation compiles about 40% faster and changes no test's tolerance (the tests compare runs
# made under the same flags, or against references at 1e-4 and wider). Measured: the EEG tiny run,
# 95 s -> 78 s on 2 cores.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true").strip()
if os.environ.get("PYTEST_XDIST_WORKER"):
  # Two workers share the 2 cores. Thread pools sized for the whole machine in each (OpenBLAS spins while
  # it waits) oversubscribe them: the LSI tiny run and the LSI notebook side by side took 580 s each
  # instead of about 60 s. One thread per worker; the workers are the parallelism.
  for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
  os.environ["XLA_FLAGS"] += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("JAXMED_NOTEBOOK_SMALL", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A persistent compilation cache shared by this session and the subprocesses it
# starts (tour, CLI tests): the same tiny programs compile once per suite run.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"jaxmed-test-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # reruns and notebooks repeat programs

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_platforms", "cpu")
if os.environ.get("PYTEST_XDIST_WORKER"):  # BLAS may have started its threads before the variables above
  import threadpoolctl  # noqa: E402
  threadpoolctl.threadpool_limits(1)
# Strict dtype promotion globally is not practical: optax's Adam bias
# correction mixes its int32 step count with Python floats and fails under it.
# Tests of jaxmed's own numerics opt in with the ``strict_dtypes`` fixture.
jax.config.update("jax_numpy_dtype_promotion", "standard")


@pytest.fixture
def strict_dtypes():
  """Runs the test body with ``jax_numpy_dtype_promotion='strict'``."""
  with jax.numpy_dtype_promotion("strict"):
    yield


@pytest.fixture(autouse=True)
def _seed_everything():
  random.seed(0)
  np.random.seed(0)
  yield


def pytest_collection_modifyitems(config, items):
  has_gpu = any(d.platform == "gpu" for d in jax.devices()) if jax.default_backend() != "cpu" else False
  if not has_gpu:
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
      if "gpu" in item.keywords:
        item.add_marker(skip)
