"""A job's log file: everything its training process prints goes there, so a failed job can be
understood without a shell on the server (`fieldlens train logs N`, the job page).

The process's file descriptors 1 and 2 are pointed at the file, so Python's log lines and warnings,
TensorFlow's C++ messages and a crash's traceback all land in it. A resumed job appends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from storage.db import utcnow
from storage.job_folder import JobFolder


def capture_output(workdir: Path, job_id: int, attempt: int) -> Path:
    """Send this process's stdout and stderr to the job's log file in `workdir`; returns its path."""
    folder = JobFolder(workdir)
    folder.path.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    fd = os.open(folder.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a file is block-buffered; a crash would lose lines
    print(f"--- {utcnow()} job {job_id}, attempt {attempt}, process {os.getpid()} ---", flush=True)
    return folder.log
