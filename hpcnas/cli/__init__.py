"""Command-line interface: ``hpcnas <command> ...``; one module per command."""
