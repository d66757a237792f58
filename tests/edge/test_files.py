"""The edge runtime's copy of the delivered file names agrees with the server's model folder."""

from __future__ import annotations

from edge import files
from storage import model_folder


def test_the_edge_reads_the_files_the_server_delivers() -> None:
    assert files.MODEL == model_folder.INT8 == model_folder.EDGE_FILES["int8"]
    assert files.LABELS == model_folder.LABELS == model_folder.EDGE_FILES["labels"]
    assert files.MANIFEST == model_folder.MANIFEST
    assert files.THRESHOLDS == model_folder.PACKED_THRESHOLDS
