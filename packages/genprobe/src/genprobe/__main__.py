from genprobe.cli import main

raise SystemExit(main())
