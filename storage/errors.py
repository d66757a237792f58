"""Errors a user can fix. Each carries a sentence written for that user."""


class UserError(Exception):
    """A problem the user can fix; `str(error)` is the sentence to show them."""


class NotFound(UserError):
    """The named dataset, job or model does not exist for this team."""


class InvalidName(UserError):
    """A name breaks the naming rules."""


class NameTaken(UserError):
    """A dataset (or model) of that name already exists for the team."""


class BadArchive(UserError):
    """The uploaded zip or folder is unsafe or not laid out as Pascal VOC."""


class DatasetRefused(UserError):
    """The dataset was read but cannot be used (no images, no boxes...)."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class DatasetLabelsDiffer(UserError):
    """Datasets to combine do not have the same labels."""


class NoTrainingImages(UserError):
    """The datasets have no images in their training split."""


class DatasetInUse(UserError):
    """A dataset cannot be deleted while a job uses it."""


class OutOfRange(UserError):
    """A numeric argument is outside its allowed range."""
