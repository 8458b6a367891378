"""The aimd command-line interface (Typer); thin: it only composes the library."""
