from bfn_solver.cli import main

raise SystemExit(main())
