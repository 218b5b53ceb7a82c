from reportgen.cli.main import main

raise SystemExit(main())
