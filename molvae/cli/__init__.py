"""The ``molvae`` command: thin typer wrappers, one library call per subcommand."""
