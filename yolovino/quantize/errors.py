"""One exception type for bad input to the quantize step; the CLI turns it into one line and exit code 2."""


class QuantizeError(Exception):
    pass
