"""python -m experiments.svr --config=experiments/svr/config.py:demo --workdir=runs/svr"""

import os

from experiments.svr import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
