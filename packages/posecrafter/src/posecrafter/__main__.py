from posecrafter.cli import main

raise SystemExit(main())
