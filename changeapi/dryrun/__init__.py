"""The dry-run engine: apply a plan on a shadow clone as Django would, tracing every statement."""
