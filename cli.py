"""dvbench command line: ``python cli.py COMMAND ...`` (same as ``python -m dvbench``)."""

from dvbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
