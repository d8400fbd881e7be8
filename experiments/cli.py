"""How a command ends on input it cannot use: one line on stderr, exit status 2.

The commands that read datasets (train, evaluate, preview_data, review, sample, train_classifier)
catch the errors whose messages name the fix and end through exit_with_error:

    try:
        ...
    except (FileNotFoundError, ValueError) as e:  # e.g. sources.DatasetNotFoundError
        cli.exit_with_error(e)
"""
import sys
from typing import NoReturn

BAD_INPUT = 2  # exit status of a command given input it cannot use (a missing dataset, a bad value)


def exit_with_error(error) -> NoReturn:
    """Prints `error: MESSAGE` as one line on stderr and exits with status BAD_INPUT."""
    message = " ".join(str(error).splitlines())
    print(f"error: {message}", file=sys.stderr)
    sys.exit(BAD_INPUT)
