"""The one exception family users see: each says what is wrong and where (file, line, field)."""


class HicraError(ValueError):
    """Bad input or configuration. The CLI prints the message alone, never a traceback."""
