"""Subcommands of the `hicra` CLI; heavy imports stay inside each handler so --help is instant."""
