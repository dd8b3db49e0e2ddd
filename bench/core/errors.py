"""Errors that the CLI turns into one line and exit status 2."""


class InputError(Exception):
    """Bad user input (a scenario file, a field, a data file): reported as one line, exit status 2.

    The message should name the file and the field it is about.
    """
