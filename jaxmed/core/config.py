"""Config helpers: presets, checked overrides, and the absl ``__main__`` pattern.

Every experiment's ``config.py`` defines ``get_config(preset="demo")`` and
returns an ``ml_collections.ConfigDict`` for one of :data:`PRESETS`. Values
are overridden on the command line with ``--config.a.b=value`` (absl
``config_flags``), or in Python with :func:`apply_overrides`. Both refuse
unknown keys and values of the wrong type.
"""

from __future__ import annotations

import ast
import os
from typing import Any, Callable, Mapping, Sequence

import ml_collections

PRESETS = ("tiny", "demo", "paper")


class ConfigError(ValueError):
  """A config override names an unknown key or has the wrong type."""


def check_preset(preset: str, extra: tuple[str, ...] = ()) -> str:
  """Returns ``preset`` if it is one of :data:`PRESETS` (or an experiment's ``extra`` presets), else raises
  ``ConfigError``."""
  if preset not in PRESETS + tuple(extra):
    raise ConfigError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS + tuple(extra))}")
  return preset


def _parse(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a bare string such as vxm or adam


def _coerce(key: str, old: Any, new: Any) -> Any:
  if old is None or isinstance(old, ml_collections.ConfigDict):
    return new
  if isinstance(old, bool):
    if isinstance(new, bool):
      return new
  elif isinstance(old, int):
    if isinstance(new, int) and not isinstance(new, bool):
      return new
  elif isinstance(old, float):
    if isinstance(new, (int, float)) and not isinstance(new, bool):
      return float(new)
  elif isinstance(old, (tuple, list)):
    if isinstance(new, (tuple, list)):
      return type(old)(new)
  elif isinstance(new, type(old)):
    return new
  raise ConfigError(f"config key {key!r} expects {type(old).__name__} (default {old!r}), "
                    f"got {type(new).__name__} {new!r}")


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any] | Sequence[str]) -> ml_collections.ConfigDict:
  """Returns a copy of ``config`` with dotted-key overrides applied.

  Args:
    config: the base config.
    overrides: ``{"train.steps": 500}`` or ``["train.steps=500", "model.kind=vxm"]``;
      string values are parsed as Python literals, falling back to a string.

  Raises:
    ConfigError: for an unknown key (listing the valid keys at that level) or
      a value whose type does not match the default.
  """
  if not isinstance(overrides, Mapping):
    pairs = {}
    for item in overrides:
      if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
      k, v = item.split("=", 1)
      pairs[k.strip()] = _parse(v.strip())
    overrides = pairs
  config = ml_collections.ConfigDict(config.to_dict(), type_safe=True)
  for key, value in overrides.items():
    node = config
    parts = key.split(".")
    for i, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:i]) or "<root>"
        valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        raise ConfigError(f"unknown config key {key!r}: no {part!r} under {where}; valid keys there: {valid}")
      if i < len(parts) - 1:
        node = node[part]
    node[parts[-1]] = _coerce(key, node[parts[-1]], value)
  return config


def run_main(train_and_evaluate: Callable[[ml_collections.ConfigDict, str], Any], default_config: str) -> None:
  """The ``experiments/<name>/__main__.py`` body: absl flags ``--config`` and ``--workdir``.

  Usage::

    python -m experiments.arc --config=experiments/arc/config.py:demo \\
        --workdir=runs/arc --config.train.steps=500

  ``--distributed`` calls ``jax.distributed.initialize()`` before anything
  else (multi-host runs). An unknown key or a mistyped value stops the program with one line that
  names the key, before anything is written to the workdir. A config that
  differs from the workdir's saved one stops it too
  (:func:`jaxmed.core.open_workdir`), unless ``--resume_override`` is given.
  """
  import sys

  from absl import app, flags
  from ml_collections import config_flags

  # config_flags applies ``--config.x.y`` overrides while the flag is defined and
  # reports an unknown key as a bare KeyError/AttributeError with a traceback;
  # turn that into one clear line.
  try:
    config_flags.DEFINE_config_file("config", default_config, "Config file, optionally with ':preset'.",
                                    lock_config=True)
  except (AttributeError, KeyError) as e:
    detail = str(e).strip("'\"").replace("\\n", " ").replace("\n", " ").replace("\\'", "'")
    overrides = [a.split("=", 1)[0].lstrip("-") for a in sys.argv[1:] if a.startswith("--config.")]
    key = next((k for k in overrides if f"'{k.rsplit('.', 1)[-1]}'" in detail), ", ".join(overrides))
    sys.stderr.write(f"FATAL config override error in {key!r}: unknown config key ({detail}); "
                     f"config file {default_config}\n")
    sys.exit(2)
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, results and figures.")
  flags.DEFINE_bool("resume_override", False, "Resume a workdir although its saved config.json differs from "
                    "this config; the change is recorded in config_history.jsonl.")
  flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first: one process per host of a "
                    "multi-host run (it reads SLURM, Open MPI or Cloud TPU settings, else the coordinator_address, "
                    "num_processes and process_id from JAX's environment variables).")
  flags.mark_flags_as_required(["workdir"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if flags.FLAGS.distributed:
      import jax
      jax.distributed.initialize()
    if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO; keep the console to the bar
      from absl import logging
      logging.set_verbosity(logging.WARNING)
    config = flags.FLAGS.config
    if flags.FLAGS.resume_override:
      with config.unlocked():
        config.resume_override = True
    try:
      train_and_evaluate(config, os.path.expanduser(flags.FLAGS.workdir))
    except ConfigError as e:  # a refused resume: the message is the whole story, no traceback
      sys.stderr.write(f"FATAL {e}\n")
      sys.exit(2)

  app.run(main)
