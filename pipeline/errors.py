"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class PipelineError(Exception):
    """Base class: the message names the bad value and, where there are any, the valid ones."""


class DataError(PipelineError):
    """The data folder is missing, empty, mislabelled or cannot be downloaded."""


class ArtifactError(PipelineError):
    """A saved model folder is missing a file or holds a broken one."""


class ConfigError(PipelineError):
    """An unknown backbone, bad weights or another bad option."""
