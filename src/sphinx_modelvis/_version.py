"""The version of sphinx-modelvis, in a module of its own so that the Sphinx extension can name it without
importing the package root (whose ``setup`` imports the extension)."""

__version__ = "0.1.0"
