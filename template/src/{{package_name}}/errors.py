"""Errors the pipeline reports to the user as one line, without a traceback."""


class PipelineError(Exception):
    """A problem the user can fix: a bad config, invalid data, a missing file."""


class ConfigError(PipelineError):
    """The configuration file is missing, unreadable or invalid."""


class DataValidationError(PipelineError):
    """A data frame does not match the expected schema."""


class ModelMismatchError(PipelineError):
    """A model file is not the one whose SHA-256 was recorded when it was saved."""
