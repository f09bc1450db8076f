"""klab's exceptions.

``str(e)`` is the message the ``klab`` command prints after ``klab: `` for
the same fault. Each class also derives from the built-in exception a
Python caller would expect (``ValueError``, ``OSError``, ``RuntimeError``).
Attributes, ``None`` where they do not apply: ``path`` (the file),
``offset`` (byte offset of the faulty record or line), ``record`` (0-based,
binary traces), ``line`` (1-based, text traces).
"""


class KlabError(Exception):
    """Every error klab raises."""

    path = None
    offset = None
    record = None
    line = None


class UsageError(KlabError, ValueError):
    """An argument that is not valid: unknown policy, unit, format or
    experiment, a bad size, an input the experiment does not take."""


class TraceError(KlabError, ValueError):
    """A trace that is not well formed; ``offset`` and ``record`` or
    ``line`` say where."""


class FileError(KlabError, OSError):
    """A file that cannot be read."""


class InputError(KlabError, ValueError):
    """A real-data input that an experiment cannot use."""


class HostError(KlabError, RuntimeError):
    """The host refused something an experiment needs."""
