"""The exception a training run raises for a bad call (missing or unusable dataset, teacher,
checkpoint): a `UserError`, so the CLI prints it on one line and exits 2, DESIGN.md 5. Kept
free of torch so that the CLI can catch it without importing the networks."""

from plumbing.errors import UserError


class TrainingError(UserError):
    pass
