"""Registers ``sreconv train`` and ``sreconv eval`` with the console script (see ``sreconv.cli``)."""

from sreconv.cli import register_command

from .cli import build_eval_parser, build_train_parser, eval_command, train_command

register_command("train", train_command, build_train_parser,
                 help="train a model and evaluate it upright, rotated and flipped (without --dataset: quick "
                      "start on MNIST-5k)")
register_command("eval", eval_command, build_eval_parser,
                 help="evaluate a checkpoint upright, rotated and flipped")
