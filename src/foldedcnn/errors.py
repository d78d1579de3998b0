"""Errors that name the problem and the fix; the CLI prints them without a traceback."""

from __future__ import annotations


class FoldedCNNError(ValueError):
    """Base class of every user-facing error raised by foldedcnn."""


def check_int(name: str, value: object, least: int, meaning: str = "", error: type[FoldedCNNError] = FoldedCNNError
              ) -> None:
    """Raise `error` naming `name` unless `value` is an integer (not a bool) >= `least`; `meaning` follows the bound
    in the message (e.g. " (0: no minimum)")."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise error(f"{name} must be an integer >= {least}{meaning}, got {value!r}")


class FoldError(FoldedCNNError):
    """A fold factor that is not a positive integer, or one a model cannot use."""


class UnknownModelError(FoldedCNNError, KeyError):
    """A model name that is not in the zoo."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ShapeError(FoldedCNNError):
    """A tensor whose rank, channels, size or dtype is not what was expected."""


class UnsupportedOpError(FoldedCNNError):
    """A layer or operation that fold_model() has no rule for, or uses in a way folding would break.

    The message names the graph node and how to proceed: `foldedcnn.transform.register_rule(...)`
    for an op that keeps channels, or `fold_model(..., leaf_modules=(MyModule,))` plus a rule for a
    module that torch.fx cannot trace.
    """


class UntrustedCodeError(FoldedCNNError):
    """Loading a file would import (and run) a module the file names; refused unless the caller trusts it.

    The convention of `trust_remote_code` in the Hugging Face ecosystem: pass `trust_code=True`
    (CLI: `--trust-code`) only for a file whose author you trust.
    """


class OutputWriteError(FoldedCNNError):
    """Output that could not be written (no space left, read-only folder, ...); see fsio.writing."""
