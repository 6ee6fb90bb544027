from gen_common.cli_main import main

raise SystemExit(main())
