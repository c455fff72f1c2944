"""python -m experiments.ribs --config=experiments/ribs/config.py:demo --workdir=runs/ribs"""

import os

from experiments.ribs import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
