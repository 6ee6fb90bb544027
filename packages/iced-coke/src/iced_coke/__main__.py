from iced_coke.cli import main

raise SystemExit(main())
