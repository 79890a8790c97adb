from kitt.cli import main

raise SystemExit(main())
