from humanpose.cli import main

raise SystemExit(main())
