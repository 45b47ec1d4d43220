"""Benchmarks for the Punctual engine: each script prints one JSON object on stdout (see README.md)."""
