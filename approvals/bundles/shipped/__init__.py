"""Python modules a release bundle ships as they are, byte for byte, for the project to import."""
