"""The launchers end their process without the interpreter's teardown, but like an exit: every
non-daemon thread finishes, thread pools nobody shut down do not hang it, the atexit handlers
run, buffered output is flushed and the exit status is kept."""

import subprocess
import sys

CODE = """
import atexit, concurrent.futures, threading, time
from ae_jax import cli

pool = concurrent.futures.ThreadPoolExecutor(2)  # never shut down
pool.submit(lambda: None).result()

def late_write():
    time.sleep(0.3)
    with open({path!r}, "w") as f:
        f.write("written")

threading.Thread(target=late_write).start()
atexit.register(lambda: print("atexit ran", flush=True))
print("buffered", end="")
cli.end_process({code!r})
print("never")
"""


def _run(tmp_path, code):
    path = str(tmp_path / "late.txt")
    r = subprocess.run(
        [sys.executable, "-c", CODE.format(path=path, code=code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r, path


def test_end_process_exits_like_the_interpreter(tmp_path):
    r, path = _run(tmp_path, 3)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "bufferedatexit ran\n"
    assert open(path).read() == "written"


def test_end_process_with_a_message(tmp_path):
    r, _ = _run(tmp_path, "stopped: see above")
    assert r.returncode == 1
    assert "stopped: see above" in r.stderr
