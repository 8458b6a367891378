"""aimd — the open quality toolkit and platform for AI medical imaging devices."""

__version__ = "0.1.0"

__all__ = ["__version__"]
