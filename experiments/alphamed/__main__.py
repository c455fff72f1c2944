"""python -m experiments.alphamed --config=experiments.alphamed/config.py:demo --workdir=runs/alphamed"""

import os

from experiments.alphamed import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
