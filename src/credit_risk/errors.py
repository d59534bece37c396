"""The one exception type for problems a user can cause and fix, and what each exit status means."""

PASSED = 0  # the command did its work; for the gate, every check passed
GATE_FAILED = 1  # the gate ran and a check failed: the candidate may not replace production
USER_ERROR = 2  # bad data, params, contract, files or remote: the message names the problem and its fix
INTERNAL_ERROR = 3  # a bug: the traceback is printed, to be reported
INTERRUPTED = 130  # Ctrl-C, as shells report it


class PipelineError(Exception):
    """Bad data, bad params, a missing file or remote: the message names the problem and its fix.

    The command line prints the message without a traceback and exits with USER_ERROR.
    """


class ChecksFailed(PipelineError):
    """A stage ran to the end and its verdict is a failure, written to its report (validate's checks).

    Its outputs are that report, so they are kept as written rather than restored.
    """
