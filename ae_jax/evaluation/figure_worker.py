"""The figure-drawing worker process: `python -m ae_jax.evaluation.figure_worker`.

It imports numpy, matplotlib and the figure modules only (no JAX), reads jobs from stdin and
answers on stdout, one at a time: each message is a 4-byte big-endian length and a pickle.
A job is one `figures.Drawing`; the answer ("ok", path) or ("error", text). It keeps one
`Renderer` for its life, so the layouts of a sweep's figures are built once per worker.
`FigureWriter` (figure_writer.py) starts it and talks to it; it ends when its stdin closes:
when the writer closes it, or the writer's process dies. It runs in a process group of its own
(a terminal's Ctrl-C reaches the training process only, which handles the stop and closes it)
and ignores SIGINT besides.
"""

import os
import pickle
import signal
import struct
import sys
import traceback

from ae_jax.evaluation.renderer import Renderer

# How much lower than the training process's a worker's scheduling priority is: on a machine
# with few cores, a worker loading matplotlib or drawing while the main process compiles,
# trains or evaluates slowed it; at this niceness it takes the cycles training leaves idle
# (measured on 2 cores: a single run 3.87 -> 3.53 s, a 64-run sweep 21.7 -> 20.3 s).
NICENESS = 10


def read_message(stream):
    """The next message from a binary stream, or None at its end."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(size))


def write_message(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def main() -> None:
    # Not a KeyboardInterrupt traceback beside the training process's "stopped by SIGINT".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    if hasattr(os, "nice"):  # draw on the cores training leaves idle, not against it
        os.nice(NICENESS)
    renderer = Renderer()
    renderer.warm_up()
    try:
        while (job := read_message(stdin)) is not None:
            try:
                answer = ("ok", job.draw(renderer))
            except Exception as e:  # noqa: BLE001 - reported to the writer, which raises it
                answer = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            write_message(stdout, answer)
    except BrokenPipeError:
        pass  # the writer is gone (its process ended): nobody to answer
    # Every figure is closed on disk and every answer flushed: end now, as multiprocessing's
    # workers do, instead of tearing down matplotlib's modules (~0.2 s the writer waits for).
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
