"""README.md opens with the two fresh-machine commands, and CI runs the second one verbatim."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_commands():
  text = open(os.path.join(ROOT, "README.md")).read()
  first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
  return [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_tour_and_test_commands():
  commands = _readme_commands()
  assert len(commands) == 2, commands
  assert "python -m experiments.tour" in commands[0] and "--preset=demo" in commands[0]
  assert "pytest" in commands[1] and ".[test,parity]" in commands[1]


def test_ci_runs_the_readme_test_command():
  ci = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
  assert _readme_commands()[1] in ci
