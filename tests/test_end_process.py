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


def test_a_command_started_with_a_standard_stream_closed_exits_with_its_status(tmp_path):
    """`ae-jax ... >&-` (or `2>&-`): the work was done, then flushing the missing stream
    (sys.stdout None) raised AttributeError and the exit status was 1 (a probe)."""
    for closed in (">&-", "2>&-"):
        script = f"{sys.executable} -m ae_jax --version {closed} > /dev/null 2> /dev/null"
        r = subprocess.run(["bash", "-c", script.replace(" > /dev/null", "", closed == ">&-")])
        assert r.returncode == 0, closed
    r = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m ae_jax --version >&- 2> {tmp_path / 'err'}"]
    )
    assert r.returncode == 0 and (tmp_path / "err").read_text() == ""


def test_output_an_ascii_locale_cannot_encode_is_escaped_not_a_traceback(tmp_path):
    """Under a strict ASCII locale (no UTF-8 mode), printing eval's '±' raised
    UnicodeEncodeError after the work was done, exit status 1 (a probe): it is escaped now,
    as standard error escapes it."""
    code = (
        "import sys; from ae_jax import commands; sys.argv = ['ae-jax', '--version'];"
        "import ae_jax.runtime as r; r.versions = lambda: {'ae_jax': '\\u00b1'};"
        "r.describe = lambda v: 'x'; commands.main()"
    )
    env = {"PYTHONUTF8": "0", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PATH": "/usr/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert r.stdout.decode("ascii") == "ae-jax \\xb1 (x)\n"
