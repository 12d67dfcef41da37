"""verify_bundle."""
