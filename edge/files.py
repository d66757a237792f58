"""The names of the files a robot gets from FieldLens, on the edge side.

The server's model folder owns these names (storage/model_folder.py); the edge runtime stands alone
(no other FieldLens package), so it keeps its own copy here, once, and tests/edge/test_files.py
checks that the two agree.
"""

MODEL = "model_int8.tflite"  # the fully int8 detector, labels packed inside
LABELS = "labels.txt"  # one label per line; packed in the model under this name, and delivered beside it
MANIFEST = "manifest.json"  # what `fieldlens-edge pull` keeps next to a pulled model
THRESHOLDS = "thresholds.json"  # the model's own score thresholds, packed in the model beside the labels
