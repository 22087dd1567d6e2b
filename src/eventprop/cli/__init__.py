"""Command-line interface: thin wiring of library calls, one module per sub-command."""
