"""The `tinydeploy` command: thin wrappers that parse options and call the library.

Each command lives in tinydeploy/commands/<name>.py and imports its heavy dependencies inside the
function, so `tinydeploy --help` and commands that do not convert start fast (no TensorFlow).
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from typing import NoReturn

import typer

try:  # typer 0.2x carries its own copy of click; older typer uses click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

from tinydeploy.commands import analyze, boards, convert, flash
from tinydeploy.commands import bench, doctor, farm, lab
from tinydeploy.commands import setup as setup_command
from tinydeploy.errors import EXIT_USAGE, TinydeployError

app = typer.Typer(
    name="tinydeploy",
    help="Put ML models on microcontrollers and prove that they run there.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
) -> None:
    """Put ML models on microcontrollers and prove that they run there."""


app.command("boards")(boards.boards)
app.command("convert")(convert.convert)
app.command("analyze")(analyze.analyze)
app.command("generate")(flash.generate)
app.command("flash")(flash.flash)
app.command("monitor")(flash.monitor)
app.command("bench")(bench.bench)
app.command("doctor")(doctor.doctor)
app.add_typer(lab.app, name="lab")
app.add_typer(farm.app, name="farm")
app.command("setup")(setup_command.setup)


# Ctrl-C, SIGTERM and SIGHUP all raise KeyboardInterrupt, so the same cleanup runs everywhere (QEMU and PlatformIO
# stopped, no half-written project); the signal is kept because typer turns the interrupt into a bare status 130.
_received_signals: list[int] = []


def _raise_interrupt(signum: int, _frame) -> None:
    _received_signals.append(signum)
    raise KeyboardInterrupt(signum)


def _install_stop_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
                signal.SIGHUP: signal.SIG_DFL}
    for signum, default in defaults.items():
        if signal.getsignal(signum) is default:  # leave an embedding program's handlers alone
            signal.signal(signum, _raise_interrupt)


def _interrupted() -> NoReturn:
    """Report the first stop signal (Ctrl-C when none was caught) with its conventional exit status."""
    signum = _received_signals[0] if _received_signals else signal.SIGINT
    if signum == signal.SIGINT:
        print("error: interrupted", file=sys.stderr)
    else:
        print(f"error: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    sys.exit(128 + signum)


def _usage_error_line(exc: UsageError) -> str:
    """One line: what was wrong on the command line and where the command's options are listed."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    command = exc.ctx.command_path if exc.ctx is not None else "tinydeploy"
    return f"{message}; see `{command} --help`"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    _install_stop_handlers()
    try:
        result = app(args=args, prog_name="tinydeploy", standalone_mode=False)
    except TinydeployError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc.one_line()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except UsageError as exc:
        print(f"error: {_usage_error_line(exc)}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except typer.Exit as exc:
        if _received_signals:
            _interrupted()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except ClickException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"error: internal error ({detail}); rerun with --debug and report it", file=sys.stderr)
        sys.exit(3)
    if _received_signals:  # typer caught the KeyboardInterrupt and returned 130
        _interrupted()
    sys.exit(result if isinstance(result, int) else 0)
