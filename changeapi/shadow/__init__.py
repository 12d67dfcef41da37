"""Shadow servers: provisioning template and clone databases, and the unprivileged runner role."""
