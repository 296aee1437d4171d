"""One base class for every error lslo reports to a user.

Each module raises a subclass (config, corpus, run, checkpoint, source ... errors); the CLI
prints any ``LSLoError`` as one line, ``error: <message>``, and exits non-zero. ``LSLoError``
is a ``ValueError`` so code that caught ``ValueError`` before keeps working.
"""


class LSLoError(ValueError):
    """A problem with a user's input, file or run, described in one line."""
