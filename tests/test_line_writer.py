"""The access log's handler writes from a thread of its own, in batches (app/line_writer.py):
nothing lost, nothing twice, in order, and written before a process ends.

Under each real server: tests/test_logs_live.py (one line per request, every launcher).
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

from app.line_writer import LineHandler

PYTHON = sys.executable


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_from_many_threads_are_all_written_once_each_in_order():
    stream = CountingStream()
    handler = LineHandler(stream)

    def write(name: str) -> None:
        for n in range(500):
            handler.write_line(f"{name} {n}", lambda: None)

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2000
    for i in range(4):
        assert [line for line in lines if line.startswith(f"t{i} ")] == [
            f"t{i} {n}" for n in range(500)
        ]


def test_the_writer_thread_writes_without_being_asked():
    stream = io.StringIO()
    handler = LineHandler(stream)
    handler.write_line("one", lambda: None)
    deadline = time.monotonic() + 5
    while "one" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "one\n"


def test_lines_queued_meanwhile_go_out_in_one_write():
    stream = CountingStream()
    handler = LineHandler(stream)
    with handler.lock:  # as when the writer is busy writing the previous batch
        for n in range(50):
            handler.write_line(f"line {n}", lambda: None)
    handler.flush()
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(50)]
    assert stream.writes == 1


WRITER = (
    "import sys\n"
    "from app.line_writer import LineHandler\n"
    "handler = LineHandler(sys.stdout)\n"
    "def write():\n"
    "    for n in range(500):\n"
    "        handler.write_line(f'line {n}', lambda: None)\n"
)
ENDS = {
    "sys.exit": "write()\nsys.exit(0)\n",
    # granian's workers are multiprocessing processes, which end without atexit
    "a multiprocessing child": (
        "import multiprocessing\n"
        "child = multiprocessing.get_context('fork').Process(target=write)\n"
        "child.start()\n"
        "child.join(10)\n"
    ),
}


def test_what_is_queued_is_written_before_the_process_ends():
    for how, end in ENDS.items():
        out = subprocess.run(
            [PYTHON, "-c", WRITER + end], capture_output=True, text=True, timeout=30, check=True
        )
        assert out.stdout.splitlines() == [f"line {n}" for n in range(500)], how


def test_a_forked_child_does_not_write_its_parents_lines_again():
    """Forked while the parent's writer is busy and a line waits behind it (gunicorn's and
    granian's workers are forked): the child writes only its own lines."""
    code = (
        "import os, sys, threading\n"
        "from app.line_writer import LineHandler\n"
        "parent, go = os.getpid(), threading.Event()\n"
        "class Stream:\n"
        "    def write(self, text):\n"
        "        if os.getpid() == parent:\n"
        "            go.wait(10)  # the parent's writer is held here\n"
        "        sys.stdout.write(text)\n"
        "    def flush(self):\n"
        "        sys.stdout.flush()\n"
        "handler = LineHandler(Stream())\n"
        "handler.write_line('first', lambda: None)\n"
        "handler.write_line('parent', lambda: None)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    handler.write_line('child', lambda: None)\n"
        "    handler.flush()\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "go.set()\n"
        "handler.flush()\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.splitlines() == ["child", "first", "parent"], out.stderr


def test_closing_writes_what_is_queued_and_ends_the_writer():
    stream = io.StringIO()
    handler = LineHandler(stream)
    with handler.lock:
        handler.write_line("queued", lambda: None)
    handler.close()
    assert stream.getvalue() == "queued\n"
    handler.writer.join(5)
    assert not handler.writer.is_alive()
    handler.write_line("after", lambda: None)  # a closed handler writes at once
    assert stream.getvalue() == "queued\nafter\n"
