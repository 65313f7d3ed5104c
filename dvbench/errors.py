"""Errors a user can cause. The CLI turns them into one line on stderr and exit status 2."""


class UsageError(ValueError):
    """Bad input from the user (a name, a file, a value); never a bug in dvbench."""
