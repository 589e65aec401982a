"""Argument checks shared by the layers: every error names the argument, the value and what is allowed."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("same", "valid")


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """Returns ``value`` as an int, or raises if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def check_tuple(value: Any, n: int, name: str, minimum: int | None = None) -> tuple[int, ...]:
    """Expands an int to an ``n``-tuple, or checks a sequence of ``n`` ints."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, numbers.Integral)):
        raise TypeError(
            f"{name} must be an int or a tuple of {n} ints, got {value!r} of type {type(value).__name__}"
        )
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (check_int(value, name, minimum),) * n
    if isinstance(value, bool) or len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(check_int(v, name, minimum) for v in value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Checks that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_kernel_size(value: Any, n: int) -> tuple[int, ...]:
    """Kernel sizes must be odd so that every kernel has a centre cell to be symmetric about."""
    size = check_tuple(value, n, "kernel_size", minimum=1)
    if any(k % 2 == 0 for k in size):
        raise ValueError(
            f"kernel_size must be odd (an SRE kernel is symmetric about its centre cell), got {value!r}; "
            f"use {tuple(k + 1 if k % 2 == 0 else k for k in size)} instead"
        )
    return size


def check_padding(value: Any, n: int, transposed: bool) -> str | tuple[int, ...]:
    """Accepts an int, an ``n``-tuple, or (for convolutions, not transposed ones) ``'same'``/``'valid'``."""
    if isinstance(value, str):
        if transposed:
            raise ValueError(f"padding must be an int or a tuple of {n} ints for transposed layers, got {value!r}")
        return check_choice(value, "padding", PADDING_STRINGS)
    return check_tuple(value, n, "padding", minimum=0)


def check_groups(groups: Any, in_channels: int, out_channels: int) -> int:
    """Checks that ``groups`` divides both channel counts."""
    groups = check_int(groups, "groups", minimum=1)
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(f"groups={groups} must divide {name}={channels}")
    return groups
