"""The base of the errors that humanpose raises for bad input (files, keys, values).

The command line prints these as one clear message instead of a traceback.
"""


class HumanposeError(Exception):
    """A problem with the user's input or environment, explained in the message."""
