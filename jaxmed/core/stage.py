"""Atomic stage outputs: a stage's directory or file is there complete, or not at all.

A stage is any output that a rerun reuses instead of recomputing: an HF
export, a base model, a GRPO run's final policy, a cache entry, a figure.
:func:`atomic_stage` builds the directory in a temporary sibling
(``<path>.partial-<pid>``), writes the completion marker :data:`MARKER` last
and renames the directory into place, so a crash at any moment leaves either
the finished directory or no directory. :func:`stage_done` is the only test
of "finished". Partial siblings left by a killed run are removed, with a log
line, the next time the stage runs; a non-empty directory at ``path`` without
the marker (written by a version without markers, or a folder of the user's)
is moved aside to ``<path>.incomplete-<time>``, never deleted.
:func:`atomic_file` does the same for one file.

:func:`settings_key` names a cache entry after everything that produced it,
so that changed settings or a changed input file build a new entry instead of
reusing a stale one.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import logging
import os
import shutil
from typing import Any, Iterator

MARKER = ".complete"
log = logging.getLogger("jaxmed")


def stage_done(path: str) -> bool:
  """Whether the stage that writes the directory ``path`` finished (its marker is there)."""
  return os.path.isfile(os.path.join(path, MARKER))


def _remove_leftovers(path: str) -> None:
  for tmp in glob.glob(glob.escape(path) + ".partial-*"):
    log.warning("removing %s: a partial output of a run that stopped mid-write", tmp)
    shutil.rmtree(tmp, ignore_errors=True) if os.path.isdir(tmp) else os.remove(tmp)
  if os.path.isdir(path) and not stage_done(path):
    if not os.listdir(path):
      os.rmdir(path)
      return
    # Not deleted: it may be a folder of the user's, or a workdir of a version without markers.
    aside = f"{path}.incomplete-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    log.warning("%s has no %s marker, so it is not a finished output (a run stopped while writing it, or "
                "an older version wrote it); moved to %s (delete it when you wish) and redoing the stage",
                path, MARKER, aside)
    os.rename(path, aside)


@contextlib.contextmanager
def atomic_stage(path: str) -> Iterator[str]:
  """Yields a temporary directory; on a clean exit it becomes ``path``, marker last.

  Usage::

    if not core.stage_done(out):
      with core.atomic_stage(out) as tmp:
        llm.save_pretrained(model, params, tmp)
        tok.save_pretrained(tmp)

  A finished ``path`` is replaced (a re-export); partial siblings are
  removed and an unfinished ``path`` is moved aside first. If the body
  raises, the temporary directory is removed and ``path`` is left as it was.
  """
  path = os.path.abspath(path.rstrip(os.sep))
  _remove_leftovers(path)
  tmp = f"{path}.partial-{os.getpid()}"
  os.makedirs(tmp)
  try:
    yield tmp
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  with open(os.path.join(tmp, MARKER), "w") as f:
    json.dump({"finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}, f)
    f.flush()
    os.fsync(f.fileno())
  if os.path.isdir(path):  # a finished earlier output being replaced
    shutil.rmtree(path)
  os.rename(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[str]:
  """Yields a temporary file path (same extension); on a clean exit it is renamed to ``path``.

  For figures and other single-file outputs: ``with atomic_file(p) as tmp: fig.savefig(tmp)``.
  """
  path = os.path.abspath(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  stem, ext = os.path.splitext(path)
  tmp = f"{stem}.partial-{os.getpid()}{ext}"
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def settings_key(settings: Any, *files: str) -> str:
  """A short hash of ``settings`` (any JSON-able value) and each file's path, size and mtime.

  Two cache entries share a key only when they were built with the same
  settings from the same, unmodified input files.
  """
  facts = [settings]
  for f in files:
    st = os.stat(f)
    facts.append([os.path.abspath(f), st.st_size, st.st_mtime_ns])
  blob = json.dumps(facts, sort_keys=True, default=str).encode()
  return hashlib.sha256(blob).hexdigest()[:16]


def save_figure(fig: Any, path: str, **savefig_kwargs: Any) -> None:
  """``fig.savefig(path, **savefig_kwargs)``, atomically: a crash never leaves half a PNG under ``path``."""
  with atomic_file(path) as tmp:
    fig.savefig(tmp, **savefig_kwargs)
