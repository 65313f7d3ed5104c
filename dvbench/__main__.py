from dvbench.cli import main

raise SystemExit(main())
