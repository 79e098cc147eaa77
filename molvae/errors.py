"""Exceptions shared across modules, importable without torch or RDKit."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


class GenerationShortfall(RuntimeError):
    """Fewer unique candidates were possible than asked for; the message says why."""
