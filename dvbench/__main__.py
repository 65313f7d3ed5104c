from dvbench.cli import main

if __name__ == "__main__":  # guarded: --workers' spawned processes import this module
    raise SystemExit(main())
