"""Project exceptions.

Every error a *user* can cause (a wrong path, a corrupt file, a bad option, a cancelled
download, a checkpoint of another model) is raised as a subclass of :class:`RnnscopeError`
whose message is one line that names the file or option, says what is wrong and what to do.
The command line prints it as ``error: <message>`` and exits 1; the app shows it in place.
Anything else that escapes is a bug in rnnscope and may keep its traceback.
"""


class RnnscopeError(Exception):
    """Base class for user-facing errors (one-line message, no traceback shown)."""


class DataError(RnnscopeError):
    """A data set could not be found, read or validated."""


class DownloadError(RnnscopeError):
    """A download failed (network, HTTP status, wrong hash); nothing was kept."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download; nothing was kept."""


class CheckpointError(RnnscopeError):
    """A checkpoint could not be read, or belongs to another architecture."""


class ConfigError(RnnscopeError):
    """An invalid option or combination of options."""


class WriteError(RnnscopeError):
    """A result file could not be written (disk full, read-only, permission); the previous
    file is kept."""


class FolderBusyError(RnnscopeError):
    """An output folder is being written by another run (its lock is held)."""
