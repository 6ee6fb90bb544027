from longalign.cli import main

raise SystemExit(main())
