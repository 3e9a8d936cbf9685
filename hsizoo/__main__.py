"""``python -m hsizoo``: the hsizoo command line."""
from hsizoo.cli import main

raise SystemExit(main())
