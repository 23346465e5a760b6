"""Attaches the operator to the actor's terminal: keys in (console), status line out, logs above it."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from actor.console import Console
from actor.operator import Operator
from actor.status import Status, StatusLine

log = logging.getLogger("actor")


@contextmanager
def operator_terminal(
    operator: Operator, fill_link: Callable[[Status], None] = lambda _s: None, fd: int | None = None
) -> Iterator[Callable[[Status], None] | None]:
    """While open: keys drive `operator`, and the yielded callback redraws the status line.

    Yields None (and changes nothing) when stdin is not a terminal or the console is disabled. The
    terminal mode and the logging handlers are restored on every exit path.
    """
    console = Console(operator.handle_key, fd=fd, enabled=operator.config.console)
    if not console.active:
        yield None
        return
    line = StatusLine(sys.stderr) if sys.stderr.isatty() else None
    root = logging.getLogger()
    saved_handlers = list(root.handlers)
    if line is not None:
        formatter = saved_handlers[0].formatter if saved_handlers else None
        root.handlers = [line.log_handler(formatter)]

    def on_status(status: Status) -> None:
        if operator.help_requested.is_set():
            operator.help_requested.clear()
            log.info("operator keys:\n%s", operator.keymap.help_text())
        if line is not None:
            fill_link(status)
            line.show(status)

    try:
        with console:
            log.info("operator console on (? for keys): s success, f failure, r reset, space pause, "
                     "i intervene, Esc/x E-STOP")  # fmt: skip
            yield on_status
    finally:
        if line is not None:
            line.clear()
        root.handlers = saved_handlers
