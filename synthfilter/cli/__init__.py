"""The ``synthfilter`` command line: a thin click layer over the library.

Each command lives in its own module under :mod:`synthfilter.cli` and is
imported only when it runs, so ``synthfilter --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from synthfilter import __version__

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("synthfilter.cli.score", "Score records for model origin, rarity and near-duplicates."),
    "rebuild": ("synthfilter.cli.rebuild", "Build a training set that caps the synthetic share."),
    "train": ("synthfilter.cli.train", "Train an origin detector on labelled data."),
    "evaluate": ("synthfilter.cli.evaluate", "Evaluate an origin detector on labelled data."),
    "data": ("synthfilter.cli.data", "Build the labelled corpus from the packaged sources."),
    "monitor": ("synthfilter.cli.monitor", "Check batches' diversity against a gold reference."),
    "report": ("synthfilter.cli.report", "Write a self-contained HTML report."),
    "simulate": ("synthfilter.cli.simulate", "Simulate model collapse and its mitigation."),
}


class UserError(click.ClickException):
    """A :class:`~synthfilter.errors.SynthfilterError` shown as one line, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LazyGroup(click.Group):
    """A click group that imports a command's module only when it is used.

    User errors (:class:`~synthfilter.errors.SynthfilterError`) become one line
    on stderr and their exit code (2); an interrupt exits with 130; a
    :class:`~synthfilter.errors.SynthfilterWarning` is printed as one line
    (``Warning: ...``) and the command goes on.
    """

    def invoke(self, ctx: click.Context):
        import warnings

        from synthfilter.errors import SynthfilterError, SynthfilterWarning

        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, SynthfilterWarning):
                click.echo(f"Warning: {message}", err=True)
            else:
                original(message, category, filename, lineno, file, line)

        from synthfilter.interrupts import remember_interrupts

        try:
            with warnings.catch_warnings(), remember_interrupts():
                warnings.simplefilter("always", SynthfilterWarning)
                warnings.showwarning = show
                return super().invoke(ctx)
        except SynthfilterError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was written.", err=True)
            ctx.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[name]
        if importlib.util.find_spec(module_name) is None:
            return None
        return importlib.import_module(module_name).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synthfilter")
def main() -> None:
    """synthfilter: keep training data anchored in human text.

    \b
    Typical use:
      synthfilter score corpus.parquet                 # p_synthetic, rarity, duplicates
      synthfilter rebuild corpus.scores.parquet --gold human.parquet \\
          --max-synthetic 0.2 -o train.parquet         # capped, de-duplicated set
      synthfilter monitor batch1.parquet batch2.parquet --reference human.parquet
    """


def run() -> None:
    """Console-script entry point: every error is one line on stderr, exit code 2 for user errors."""
    try:
        _run()
    except SystemExit as exc:
        _leave(exc.code)


def _run() -> None:
    import sys

    try:
        code = main(standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # bare `synthfilter`
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"Error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _leave(code: object) -> None:
    """End the process as ``sys.exit(code)`` does, without tearing the interpreter down.

    Everything a normal exit does that matters is done here, in its order:
    the threads' exit hooks and non-daemon threads are joined, the
    ``atexit`` functions run (Ray's shutdown, temporary folders, logging),
    and the standard streams are flushed. What is skipped is freeing every
    object one by one: that took 0.8 s after a static-encoder run (0.5 s of it
    the tokenizer's vocabulary) and 1 s once sentence-transformers is
    imported, on every command. Every output was written (and renamed into
    place) before this point.
    """
    import atexit
    import os
    import sys
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    try:
        getattr(threading, "_shutdown", lambda: None)()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
                pass
        os._exit(status)
