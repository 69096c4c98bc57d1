"""`python -m fleetbgp ...` is the `fleetbgp` command."""

from fleetbgp.cli import main

raise SystemExit(main())
