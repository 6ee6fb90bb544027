from microdreamer.cli import main

raise SystemExit(main())
