"""Pure export logic, no Django models: the random function, buckets, caption rendering, lint
checks on text and the fidelity simulations (docs/training.md). Inputs are `apps.training.plan`
values."""
