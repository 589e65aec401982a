"""Exceptions raised by the dataset loaders.

Both carry a single-line message that names the file involved, so a training log shows at a glance what
is wrong and how to fix it.
"""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder is missing (or could not be downloaded).

    The message says which file, where it was looked for and how to obtain it.
    """


class CorruptDatasetError(ValueError):
    """A dataset file exists but cannot be read or does not have the expected format.

    The message names the file and what is wrong with it (truncated, wrong keys, dtype or shape).
    """
