"""Shared test infrastructure: component checks, real-service fixtures, shared suites."""
