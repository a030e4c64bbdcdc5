"""Errors meant for people.

Every error that a user can cause derives from :class:`SynthfilterError`. Its
message is one line that names the problem (file, column, rows) and the fix.
The CLI prints it and exits with :attr:`SynthfilterError.exit_code`; it never
shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Sequence


class SynthfilterError(Exception):
    """Base class for errors caused by input, configuration or environment."""

    exit_code: int = 2


class InputError(SynthfilterError):
    """A corpus file cannot be read or does not have the expected shape."""


class SchemaError(InputError):
    """A column is missing, has the wrong type, or holds invalid values."""


class ConfigError(SynthfilterError):
    """Parameters or a policy are invalid or impossible to satisfy."""


class ModelError(SynthfilterError):
    """A model file is missing, corrupt, untrusted or incompatible."""


class MissingExtraError(SynthfilterError):
    """An optional dependency is not installed.

    Parameters
    ----------
    package : str
        The missing distribution.
    extra : str
        The synthfilter extra that provides it.
    purpose : str
        What needs it (starts the message).
    command : str, optional
        The install command to print; ``pip install 'synthfilter[<extra>]'`` by default.
    """

    def __init__(self, package: str, extra: str, purpose: str, command: str | None = None) -> None:
        command = command or f"pip install 'synthfilter[{extra}]'"
        super().__init__(f"{purpose} needs the package '{package}', which is not installed; install it with: {command}")


class OutputError(SynthfilterError):
    """An output path is unwritable or would overwrite an input."""


class SynthfilterWarning(UserWarning):
    """A result that may mislead: the run goes on, and the CLI prints the message as one line."""


def describe_rows(rows: Sequence[int], limit: int = 5) -> str:
    """Render row numbers for a message: ``rows 3, 7, 9 (and 12 more)``.

    Parameters
    ----------
    rows : sequence of int
        Zero-based row indices.
    limit : int, default 5
        How many rows to name before summarising the rest.
    """
    shown = ", ".join(str(r) for r in list(rows)[:limit])
    rest = len(rows) - limit
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}" + (f" (and {rest} more)" if rest > 0 else "")
