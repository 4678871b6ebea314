from yolovino.fleet.cli import main

raise SystemExit(main())
