"""The installed package's version (from its metadata, so pyproject.toml is the one source)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("mailflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
