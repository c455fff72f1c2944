"""Core training machinery shared by every method: small functions, no Trainer class.

Knows nothing about any method. See each module's docstring:
``mesh`` (devices and shardings), ``state`` (train state and jitted step),
``checkpoint`` (orbax), ``metrics`` (workdir files), ``progress`` (tqdm),
``guards`` (non-finite stop, compile counting), ``loop`` (the shared resumable
training loop), ``config`` (presets, overrides, absl main), ``data``
(step-indexed grain pipelines), ``probes`` (linear probes on frozen
features), ``stage`` (atomic stage outputs, cache keys),
``workdir`` (config identity on resume, wall time over legs).
"""

from jaxmed.core.checkpoint import CheckpointError, checkpoint_manager, reading_checkpoint, restore_latest, save
from jaxmed.core.config import PRESETS, ConfigError, apply_overrides, check_preset, run_main
from jaxmed.core.data import ArraySource, step_batches
from jaxmed.core.loop import train_loop
from jaxmed.core.guards import NonFiniteError, check_finite, count_compiles
from jaxmed.core.mesh import (BATCH_AXES, MESH_AXES, batch_sharding, host_local_batch, make_mesh, replicated,
                              shard_batch, tree_shardings)
from jaxmed.core.metrics import (MetricWriter, device_kind, gather_run_metrics, read_metrics, result_float, to_host,
                                 write_json, write_results)
from jaxmed.core.probes import logistic_probe, ridge_probe
from jaxmed.core.progress import progress_bar, update_progress
from jaxmed.core.stage import atomic_file, atomic_stage, save_figure, settings_key, stage_done
from jaxmed.core.stats import bootstrap_metric, paired_bootstrap
from jaxmed.core.state import TrainState, create_train_state, make_train_step, step_rng
from jaxmed.core.workdir import config_changes, open_workdir, result_settings

__all__ = [
    "apply_overrides", "ArraySource", "atomic_file", "atomic_stage", "BATCH_AXES", "batch_sharding",
    "check_finite", "check_preset", "logistic_probe", "ridge_probe", "checkpoint_manager", "CheckpointError", "config_changes", "ConfigError",
    "count_compiles", "create_train_state", "device_kind", "gather_run_metrics", "host_local_batch",
    "make_mesh", "make_train_step", "MESH_AXES", "MetricWriter", "NonFiniteError", "open_workdir", "PRESETS",
    "bootstrap_metric", "paired_bootstrap", "progress_bar", "read_metrics", "reading_checkpoint", "replicated", "restore_latest", "result_float",
    "result_settings", "run_main", "save", "save_figure", "settings_key", "shard_batch", "stage_done",
    "step_batches", "step_rng", "to_host", "train_loop", "TrainState", "tree_shardings", "update_progress",
    "write_json", "write_results",
]
