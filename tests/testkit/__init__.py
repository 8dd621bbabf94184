"""Helpers shared by the tests (importable as ``testkit`` because pytest puts ``tests/`` on the path)."""
