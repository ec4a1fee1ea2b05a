"""The one exception type that reaches a user as a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input or a missing asset: the message says what is wrong and how to fix it, in one line."""


class NoFaceError(UserError):
    """A readable video or image in which no face was found (callers that may skip such an input catch this, never
    UserError as a whole: a corrupt file must still stop them)."""
