"""gedge.cli: the command line. Parses, calls the library, renders."""
