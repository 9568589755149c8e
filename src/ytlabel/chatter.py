"""TensorFlow's start-up chatter kept off a person's terminal (unless `ytlabel --verbose`).

TensorFlow's native libraries write their start-up notes (oneDNN, CPU instruction sets, absl's "before
InitializeLog" warning) to file descriptor 2 while `import tensorflow` runs, before any setting of theirs
is read, so no environment variable silences them all. The command-line entry point therefore routes the
native descriptor 2 through a thread that drops exactly those lines and passes every other line on; Python's
own `sys.stderr` keeps the terminal itself (progress bars still see a TTY, tracebacks are not delayed).
"""

import contextlib
import os
import re
import sys
import threading

# The lines dropped, and only these: anything else native code writes reaches the terminal unchanged.
CHATTER = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
)


@contextlib.contextmanager
def quiet_native_stderr():
    """Filters native writes to descriptor 2 for the duration; Python's stderr writes straight through."""
    sys.stderr.flush()
    terminal = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(
        os.dup(terminal), "w", buffering=1, encoding=python_stderr.encoding or "utf-8", errors="backslashreplace"
    )
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's later INFO/WARNING lines, and the workers'

    def forward():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not CHATTER.search(line.decode("utf-8", "replace")):
                    os.write(terminal, line)

    thread = threading.Thread(target=forward, name="ytlabel-native-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the thread reads to the end and stops
        thread.join(timeout=5)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.close(terminal)
