"""The errors a user's input or environment can cause. Each message is one line for the user: the commands
print it after `<command>: error:`, never with a traceback, and exit with status 2 for the input
(`USER_ERRORS`) or 1 for a file or folder that cannot be written (`StorageError`).

No imports: the command line names these before torch and Lightning are loaded (see linreg/cli/).
"""


class UsageError(ValueError):
    """A flag's value that cannot work."""


class DataError(ValueError):
    """A data file that cannot be read, or rows that cannot be trained on."""


class CheckpointError(ValueError):
    """A path given as a checkpoint that is missing or is not one of this project's."""


class ResumeError(ValueError):
    """A checkpoint's position that this run cannot continue from."""


class StorageError(OSError):
    """A file or folder that cannot be written: a full disk, no permission (exit status 1: not the input)."""


USER_ERRORS = (UsageError, DataError, CheckpointError, ResumeError)
