"""The built-in search spaces (``--space small|medium|paper|cifar``), one YAML file each.

This folder is the one users read and copy; it is installed as the package data
``dvbench.space.builtin`` (``pyproject.toml``: ``package-dir``), so a wheel finds the same files.
"""
