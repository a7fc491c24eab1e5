"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class FmError(Exception):
    """Bad input from the user (file, key, value); the message names it and what was expected."""


class ConfigError(FmError):
    """A configuration key or value is wrong."""


class DamagedFile(FmError):
    """A file that was written whole once is cut short or corrupt (a full disk, a bad copy)."""


class TrainingDiverged(FmError):
    """The loss became NaN/Inf; training stopped before the bad update was applied."""

    def __init__(self, step: int, value: float, last_checkpoint: str | None):
        self.step = step
        self.value = value
        self.last_checkpoint = last_checkpoint
        kept = f"; last good checkpoint kept at {last_checkpoint}" if last_checkpoint else ""
        super().__init__(f"training diverged: loss is {value} at step {step}{kept}")


def warn(message: str) -> None:
    """A one-line warning on stderr (``fmrecipes: warning: ...``): something was recovered, the run goes on."""
    import sys

    print(f"fmrecipes: warning: {message}", file=sys.stderr, flush=True)
