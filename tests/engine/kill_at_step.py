"""``python -m tests.engine.kill_at_step N train ...``: runs ``sreconv train ...`` and SIGKILLs itself right after
optimizer step N (a crash mid-epoch, deterministically), through a training callback."""

import os
import signal
import sys

from sreconv.cli import build_parser
from sreconv.commands.train import resolve
from sreconv.engine import Callback, run_train


class KillAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, loss: float) -> None:
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    args = build_parser().parse_args(sys.argv[2:])
    config, resume = resolve(args)
    run_train(config, resume=resume, callbacks=(KillAtStep(int(sys.argv[1])),))
