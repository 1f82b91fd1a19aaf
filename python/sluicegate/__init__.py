"""sluicegate: a self-hosted LLM gateway (OpenAI API in front, native provider APIs behind)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sluicegate")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
