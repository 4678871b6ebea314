from yolovino.quantize.cli import main

raise SystemExit(main())
