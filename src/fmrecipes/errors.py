"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class FmError(Exception):
    """Bad input from the user (file, key, value); the message names it and what was expected."""


class ConfigError(FmError):
    """A configuration key or value is wrong."""


class DamagedFile(FmError):
    """A file that was written whole once is cut short or corrupt (a full disk, a bad copy)."""


class UnsafeFile(FmError):
    """A file holds Python objects other than tensors, numbers, strings and containers: loading it could run
    code, so it is refused (``torch.load(..., weights_only=True)``)."""


class Preempted(FmError):
    """The run was asked to stop (SIGTERM, SIGUSR1): it finished its step, wrote a checkpoint and stopped."""

    exit_code = 75  # EX_TEMPFAIL: run the same command again to resume

    def __init__(self, signal_name: str, step: int, checkpoint: str | None):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"stopped by {signal_name} after step {step}; checkpoint {checkpoint}; run the same command "
                         "again to resume")


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
