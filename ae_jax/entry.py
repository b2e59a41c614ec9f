"""The `ae-jax` console script, `python -m ae_jax` and the launchers in experiments/: a stop is
heard from the process's first instant.

Loading a command's modules (JAX, flax, optax) takes most of a second, and until
`commands.main` put its handlers in place a Ctrl-C was Python's own KeyboardInterrupt, raised
wherever the interpreter happened to be: inside a garbage-collection callback of JAX's it was
printed as "Exception ignored" and lost, and the command trained to the end and exited 0 (a
probe: 4 of 12 Ctrl-Cs sent in the first 0.45 s). Here a SIGINT or SIGTERM is only noted (and
said) until then, and `commands.main` acts on a noted one as on one that comes after: one line,
exit 128 + the signal. A second one ends the process at once, as in training.

This module imports nothing heavy itself: the commands are imported by `main`, after the
handlers are in place, which is the point of it.
"""

import os
import signal
import threading

_STOPS = (signal.SIGTERM, signal.SIGINT)


class EarlyStops:
    """Notes the first SIGTERM/SIGINT while a command's modules load (see the module
    docstring); `take()` returns it once."""

    def __init__(self) -> None:
        self._signum: int | None = None

    def install(self) -> "EarlyStops | None":
        """Puts the noting handlers in place (main thread only: None elsewhere, where Python
        cannot set handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        for s in _STOPS:
            signal.signal(s, self._note)
        return self

    def _note(self, signum, frame) -> None:
        if self._signum is not None:  # a second one: at once, as the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._signum = signum
        name = signal.Signals(signum).name
        try:  # (a descriptor: a handler may interrupt a write to sys.stderr)
            os.write(2, f"{name}: stopping once the command's modules have loaded\n".encode())
        except OSError:
            pass

    def take(self) -> int | None:
        """The noted signal, if any (then forgotten)."""
        signum, self._signum = self._signum, None
        return signum


def main(argv: list[str] | None = None) -> None:
    """`ae_jax.commands.main(argv)`, with stops noted from the start."""
    early = EarlyStops().install()
    from ae_jax import commands  # after the handlers: see the module docstring

    commands.main(argv, early)
