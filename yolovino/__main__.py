from yolovino.app import main

raise SystemExit(main())
