"""python -m experiments.vita --config=experiments/vita/config.py:demo --workdir=runs/vita"""

import os

from experiments.vita import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
