"""Test helpers and stand-ins (each named as such); imported by tests only."""
