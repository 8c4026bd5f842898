"""The child process `segedge.train.recipe.train` starts: `python -m segedge.train.worker`.

It reads one JSON request on stdin ({"config": TrainConfig as a dict, "out": folder, "data":
dataset root}), trains there, and prints its progress one line at a time on stdout. A process of
its own, because ATen and MKL read the settings of portable numerics once, when they start
(`segedge.train.numerics`); the parent sets them in this process's environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segedge.train.recipe import TrainConfig, train_here


def main() -> None:
    request = json.loads(sys.stdin.read())
    train_here(TrainConfig.from_dict(request["config"]), Path(request["out"]), Path(request["data"]),
               progress=lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
