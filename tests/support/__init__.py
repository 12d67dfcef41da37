"""Test support: real local servers standing in for external HTTP services."""
