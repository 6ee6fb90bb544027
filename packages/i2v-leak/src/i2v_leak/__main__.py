from i2v_leak.cli import main

raise SystemExit(main())
