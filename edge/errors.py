"""Edge errors state what was expected and what was found."""


class EdgeError(Exception):
    """A problem with a model, labels, source or output that the user can fix."""


class NotADetectionModel(EdgeError):
    """The .tflite file is not an SSD-style detection model with the four standard outputs."""


class SourceError(EdgeError):
    """An image, folder, video or camera cannot be read."""
