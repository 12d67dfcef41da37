"""Release bundles: their contents, the reproducible archive, and the signature."""
