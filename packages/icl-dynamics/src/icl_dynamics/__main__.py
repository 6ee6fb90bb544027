from icl_dynamics.cli import main

raise SystemExit(main())
