"""Reviews, approval policies, the audit trail and release bundles."""
