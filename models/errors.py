"""Errors the forecaster raises on purpose."""


class SeriesTooShort(ValueError):
    """The series has fewer points than the model needs (see ``models.MIN_LENGTH``)."""


class TrainingDiverged(RuntimeError):
    """Training kept producing non-finite losses or gradients after repeated learning-rate
    back-offs; the weights were never updated with a non-finite value."""
