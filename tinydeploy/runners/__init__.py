"""Runners put a built firmware on a board and give back the URL of its serial port (see runners/base.py).

The registry: every module of this package that defines a Runner subclass with a `name` provides that runner;
a board profile chooses one by name. Adding a way to flash is one module with one class (and its name in the
profile schema, tinydeploy.boards.UPLOAD_METHODS).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from tinydeploy.errors import TinydeployError
from tinydeploy.runners.base import Runner, RunnerCaps, UnresolvedPort

if TYPE_CHECKING:
    from tinydeploy.boards import Board

__all__ = ["Runner", "RunnerCaps", "UnresolvedPort", "discover_runners", "runner_class", "runner_classes",
           "runner_for", "runner_for_place"]
PLACE_RUNNER = "labgrid"  # the runner of a board on another machine, chosen by --place


@lru_cache(maxsize=1)
def runner_classes() -> dict[str, type[Runner]]:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[Runner]] = {}
    pending = list(Runner.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.name and cls.__module__.startswith(f"{__name__}."):
            found[cls.name] = cls
    return found


def runner_class(name: str) -> type[Runner]:
    classes = runner_classes()
    if name not in classes:
        raise TinydeployError(f"no runner named '{name}'", f"use one of: {', '.join(sorted(classes))}")
    return classes[name]


def runner_for(board: Board, port: str | None = None, index: int = 0, serial_number: str = "") -> Runner:
    """The runner the board's profile names, for one board (`index` tells several emulated boards apart)."""
    cls = runner_class(board.upload_runner)
    cls.check_settings(board)
    return cls(board, port=port, index=index, serial_number=serial_number)


def runner_for_place(place: str, coordinator: str | None = None, board: Board | None = None,
                     acquire_timeout: float | None = None, borrow: bool = False) -> Runner:
    """The runner of a board farm's place (labgrid); its board profile comes from the place's exporter and must be
    `board` when given. `borrow`: use a place you already acquired yourself (labgrid-client acquire) as is."""
    options = {} if acquire_timeout is None else {"acquire_timeout": acquire_timeout}
    return runner_class(PLACE_RUNNER).for_place(place, coordinator, board, borrow=borrow, **options)


def discover_runners(boards: Sequence[Board], ports=None) -> tuple[list[Runner], list[UnresolvedPort]]:
    """Every board of `boards` attached to this machine, one runner each, and the ports whose USB id fits several
    profiles (pass --board to say which). `ports`: a pyserial port list (default: the live one)."""
    runners: list[Runner] = []
    unresolved: list[UnresolvedPort] = []
    for name, cls in sorted(runner_classes().items()):
        mine = [b for b in boards if b.upload_runner == name]
        if mine:
            found, ambiguous = cls.discover(mine, ports)
            runners += found
            unresolved += ambiguous
    return runners, unresolved
