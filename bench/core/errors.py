"""Errors that the CLI turns into one line and exit status 2."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name): libraries' messages run to many lines."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class InputError(Exception):
    """Bad user input (a scenario file, a field, a data file): reported as one line, exit status 2.

    The message should name the file and the field it is about.
    """
