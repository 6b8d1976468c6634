from ternkit.cli import main

raise SystemExit(main())
