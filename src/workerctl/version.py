"""workerctl's version, in a module of its own: the plugin manager and the CLI read it
without importing the package's ``__init__`` (whose lazy ``hookimpl`` reaches the API,
which reaches the plugin manager: a cycle)."""

__version__ = "0.1.0"
