"""The one exception type that reaches a user as a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input or a missing asset: the message says what is wrong and how to fix it, in one line."""
