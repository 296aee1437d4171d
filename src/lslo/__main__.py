from lslo.cli import main

raise SystemExit(main())
