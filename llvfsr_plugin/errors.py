"""The errors a user can fix, under one base class.

Every console command (`basicsr`, `llvfsr-infer`, `llvfsr-report`, `datasets_prep/*.py`) prints a `UserError`
as one line naming the file / key / option and what to do, without a traceback (set LLVFSR_TRACEBACK=1 to
see it). Anything else is a bug and keeps its traceback.

Each class also derives from the builtin its callers used to catch (ValueError, RuntimeError), so
`except ValueError` around a record or an image still works.
"""


class UserError(Exception):
    """A problem with the user's options, data, weights or files; the message says what to do."""


class OptionError(UserError, ValueError):
    """An option file, a dataset option or a network option that cannot work (unknown name, mismatch)."""


class RecordError(UserError, ValueError):
    """A prior record or store that is missing, corrupt, or was made for something else."""


class StoreNotFound(RecordError, FileNotFoundError):
    """A store (LMDB or folder) that is not there, or whose build was interrupted."""


class StoreCorrupt(RecordError):
    """A store whose LMDB file is empty, foreign or shorter than LMDB expects (an interrupted copy)."""


class WriteFailed(UserError, OSError):
    """A write that the file system refused (disk full, read-only); what was written before is kept."""


class PrepBusy(UserError, RuntimeError):
    """Another prep process holds the dataset root's lock."""


class TrainBusy(UserError, RuntimeError):
    """Another `basicsr train` process is training the same experiment."""


class BadImage(UserError, ValueError):
    """An input image that prep or inference refuses; the message names the file, the problem and the fix."""

    def __init__(self, path, problem, fix):
        super().__init__(f'{path}: {problem}. {fix}')
        self.path, self.problem, self.fix = path, problem, fix


class BadText(UserError, ValueError):
    """A caption / description file that cannot be used (missing, empty, not UTF-8)."""


class ModelUnavailable(UserError, RuntimeError):
    """A pretrained model's weights (prior extractor or metric) are not on this machine; the message says
    where they were looked for and how to provide them."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable, or was trained with other network options."""
