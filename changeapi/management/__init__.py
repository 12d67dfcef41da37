"""Management commands of the changeapi app."""
