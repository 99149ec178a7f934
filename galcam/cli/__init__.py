"""Command-line interface of galcam (``galcam SUBCOMMAND ...``)."""
