from lslo.cli.main import main

raise SystemExit(main())
