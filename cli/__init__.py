"""The command line: argument parsing, the subcommands' work, progress output and exit codes.

Imports core (the engine) and report (matplotlib figures); never app (Qt)."""
