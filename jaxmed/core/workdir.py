"""A workdir's identity across reruns: its config, the changes accepted on resume, and its wall time.

:func:`open_workdir` is the first call of every ``train_and_evaluate``:

* The first run writes ``config.json``; it is the workdir's identity. A rerun
  compares its config with that one. Keys that cannot change the result
  (:data:`RESULT_NEUTRAL_KEYS`: logging and checkpoint periods, progress
  output) may differ. Any other difference stops the run with a
  :class:`~jaxmed.core.config.ConfigError` that lists each key with its old
  and new value, because the restored checkpoints and cached stages were made
  under the old config and the results would be recorded under the wrong one.
  ``--resume_override`` on the command line (``config.resume_override = True``
  in Python) accepts the change: it is appended to ``config_history.jsonl``
  and ``config.json`` then holds the config now in force.
* Each run of the workdir is one *leg*, logged in ``wall_time.json``.
  A leg killed before it finished ends at the newest file it wrote.
  :func:`jaxmed.core.write_results` reports ``wall_time_s`` (all legs) and
  ``wall_time_legs_s``.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any

from jaxmed.core.config import ConfigError
from jaxmed.core.metrics import write_json

CONFIG_FILE = "config.json"
HISTORY_FILE = "config_history.jsonl"
LEGS_FILE = "wall_time.json"
# Leaf names (and top-level groups) whose value cannot change params, metrics or results:
# how often to log or checkpoint (a resume is bitwise-exact), how many checkpoints to keep,
# and the override switch itself.
RESULT_NEUTRAL_KEYS = frozenset({"log_every", "log_completions_every", "save_every", "keep", "resume_override",
                                 "progress"})


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
  if hasattr(d, "to_dict"):
    d = d.to_dict()
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(_flatten(v, key + "."))
    else:
      out[key] = v
  return out


def _normalise(v: Any) -> Any:
  return json.loads(json.dumps(v, default=str))  # tuples -> lists etc., as config.json stores them


def config_changes(old: dict, new: Any) -> dict[str, tuple[Any, Any]]:
  """``{dotted key: (old, new)}`` for every key whose value differs (a missing key is ``None``),
  leaving out the :data:`RESULT_NEUTRAL_KEYS`."""
  a, b = _flatten(old), {k: _normalise(v) for k, v in _flatten(new).items()}
  out = {}
  for key in sorted(set(a) | set(b)):
    if key.rsplit(".", 1)[-1] in RESULT_NEUTRAL_KEYS:
      continue
    if a.get(key) != b.get(key):
      out[key] = (a.get(key), b.get(key))
  return out


def result_settings(config: Any) -> dict[str, Any]:
  """The flattened config without its :data:`RESULT_NEUTRAL_KEYS`: what a cache key of a whole run's
  settings should hash (:func:`jaxmed.core.settings_key`)."""
  return {k: _normalise(v) for k, v in _flatten(config).items() if k.rsplit(".", 1)[-1] not in RESULT_NEUTRAL_KEYS}


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _newest_mtime(workdir: str, after: float) -> float:
  newest = after
  for root, _, files in os.walk(workdir):
    for name in files:
      try:
        newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
      except FileNotFoundError:  # removed while walking (orbax temp files)
        pass
  return newest


def open_workdir(workdir: str, config: Any) -> None:
  """Creates or reopens ``workdir`` for ``config``; refuses a changed config unless it is overridden.

  Raises:
    ConfigError: the saved config differs in a key that can change the result;
      the message lists every such key, old and new value, and the two ways on.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  new = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise ConfigError(f"{path}: not a readable JSON config ({e}); this workdir's identity is lost. "
                        "Start a new --workdir.") from e
    changes = config_changes(old, new)
    if changes and not new.get("resume_override", False):
      listed = "\n".join(f"  {k}: {o!r} -> {n!r}" for k, (o, n) in changes.items())
      raise ConfigError(
          f"{path}: this workdir was started with another config, and its checkpoints and cached stages "
          f"were made under it. Changed keys (saved -> now):\n{listed}\n"
          "Use a new --workdir for the new config, or pass --resume_override (config.resume_override=True "
          "in Python) to continue this run under the new values; the change is then recorded in "
          f"{HISTORY_FILE}.")
    if changes:
      with open(os.path.join(workdir, HISTORY_FILE), "a") as f:
        f.write(json.dumps({"at": _now(), "changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}},
                           sort_keys=True, default=str) + "\n")
  new.pop("resume_override", None)  # a switch for this leg, not part of the identity
  write_json(path, new)
  _start_leg(workdir)


def _start_leg(workdir: str) -> None:
  path = os.path.join(workdir, LEGS_FILE)
  legs = _read_legs(workdir)
  if legs and legs[-1].get("end") is None:  # the last leg was killed: it ran until its newest file
    legs[-1]["end"] = _newest_mtime(workdir, legs[-1]["start"])
    legs[-1]["killed"] = True
  legs.append({"start": time.time(), "end": None})
  write_json(path, {"legs": legs})


def _read_legs(workdir: str) -> list[dict]:
  path = os.path.join(workdir, LEGS_FILE)
  if not os.path.exists(path):
    return []
  try:
    with open(path) as f:
      return list(json.load(f)["legs"])
  except (OSError, ValueError, KeyError, TypeError):
    return []  # bookkeeping only: a damaged file restarts the count rather than stopping the run


def finish_leg(workdir: str) -> list[float] | None:
  """Ends the current leg; returns every leg's duration in seconds (``None`` without :func:`open_workdir`)."""
  legs = _read_legs(workdir)
  if not legs:
    return None
  if legs[-1].get("end") is None:
    legs[-1]["end"] = time.time()
  write_json(os.path.join(workdir, LEGS_FILE), {"legs": legs})
  return [max(0.0, float(leg["end"]) - float(leg["start"])) for leg in legs]
