"""Services: every write and state transition, one transaction each, audited."""
