"""The one exception type for problems a user can cause and fix."""


class PipelineError(Exception):
    """Bad data, bad params, a missing file or remote: the message names the problem and its fix.

    The command line prints the message without a traceback and exits with status 2.
    """
