from mdm_scaling.cli import main

raise SystemExit(main())
