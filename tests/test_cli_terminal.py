"""The terminal as a conversation: library chatter goes to a log file unless --verbose."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    from pathlib import Path
    from fieldlens.cli import terminal

    terminal.setup_logging("INFO")
    restore = terminal.quiet({verbose}, Path(sys.argv[1]))
    os.write(2, b"fully_quantize: 0, inference_type: 6\\n")  # what C++ code writes to stderr itself
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'I0000 oneDNN custom operations\\\\n')"])
    logging.getLogger("storage.db").info("migrating database")
    logging.getLogger("absl").warning("absl chatter")
    logging.getLogger("trainer.worker").warning("a FieldLens warning")
    print("a line for the user", file=sys.stderr)
    restore()
    """
)


@pytest.mark.parametrize("verbose", [False, True])
def test_library_chatter_goes_to_the_log_unless_verbose(tmp_path: Path, verbose: bool) -> None:
    log = tmp_path / "logs" / "demo.log"
    script = SCRIPT.format(verbose=verbose)
    done = subprocess.run(
        [sys.executable, "-c", script, str(log)], capture_output=True, text=True, timeout=60, check=True
    )
    shown = done.stderr
    assert "a line for the user" in shown and "a FieldLens warning" in shown
    chatter = ["fully_quantize", "I0000 oneDNN", "migrating database", "absl chatter"]
    if verbose:
        assert all(c in shown for c in chatter) and not log.exists()
    else:
        assert not any(c in shown for c in chatter), shown
        kept = log.read_text()
        assert "fully_quantize" in kept and "I0000 oneDNN" in kept  # there to read when something fails
