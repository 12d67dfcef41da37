"""HTTP layer of approvals."""
