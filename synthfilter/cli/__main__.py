"""``python -m synthfilter.cli``: the same as the ``synthfilter`` command."""

from synthfilter.cli import run

run()
