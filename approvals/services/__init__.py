"""Services of approvals: review decisions and release bundles."""
