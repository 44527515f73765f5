"""The errors a user can cause, and can fix: what the CLI reports as one line (``error: <message>``, exit code 2).

Every message names the file, option or model at fault and says what to do. An exception that is not an
:class:`ExpclipError` is a bug in expclip: the CLI says so in one line and shows the traceback with ``-v``.

The families subclass the built-in exception a Python caller would expect as well (``InputError`` is a
``ValueError``, ``MissingError`` a ``FileNotFoundError`` ...), so ``except ValueError`` keeps working.

A leaf module: it imports nothing.
"""

from __future__ import annotations

from pathlib import Path


class ExpclipError(Exception):
    """A user-facing error; ``str()`` is the one-line message."""


class InputError(ExpclipError, ValueError):
    """An option, argument or file content that cannot be used."""


class MissingError(ExpclipError, FileNotFoundError):
    """A file, folder or input that was named but is not there."""


class ConflictError(ExpclipError, FileExistsError):
    """An output location already holds something else (another run's head, a non-empty folder)."""


class UnavailableError(ExpclipError, RuntimeError):
    """Something to install or provide: a package, a model's files, a device."""


class ModelNotAvailableError(UnavailableError):
    """A model could not be found locally or downloaded; the message says how to provide it."""


class FaceDetectorUnavailable(UnavailableError):
    """The face detector's package is missing or lacks its model files; the message says what to install."""


class DatasetError(InputError):
    """A dataset on disk does not have the expected layout or content; the message names the file."""


class StoreError(ExpclipError, RuntimeError):
    """A feature store is missing, incomplete or unreadable."""


class StaleStoreError(StoreError):
    """A store was computed under another key (model, revision, preprocessing, data, instruction, dtype...)."""


class CheckpointError(ExpclipError, RuntimeError):
    """A head checkpoint is missing, malformed or incompatible; the message names the file."""


class ExtractionFailure(ExpclipError, RuntimeError):
    """Raised in strict mode at the first item that cannot be used; the message names its file and the reason."""


class RowFileError(InputError):
    """A results file cannot be written or resumed; the message names it and says what to do."""


class TrainingDiverged(ExpclipError, FloatingPointError):
    """Head training produced a non-finite loss; the message names the step and what to change."""


class ImageDecodeError(ExpclipError):
    """An image file could not be read; ``str()`` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")
