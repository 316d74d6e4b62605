"""The one base type for user errors: a bad call, a bad flag value, a missing or unusable file.

Every CLI's `run_command` (plumbing.console) catches `UserError` and prints it on one line with
exit code 2 (DESIGN.md 5); nothing else catches it. Bugs stay tracebacks. The subclasses say
where the problem was found; they add no behaviour.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: reported as one line, exit code 2."""


class DatasetError(UserError):
    """A problem with a dataset or a path."""


class ConfigError(UserError, ValueError):
    """A setting out of its domain, found when a config is validated (also a ValueError, so
    library callers that catch ValueError keep working)."""
