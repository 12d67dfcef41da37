"""Projects, baselines, change requests, intake, shadow databases and the dry-run engine."""
