from radd.cli import main

raise SystemExit(main())
