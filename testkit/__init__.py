"""What the tests and the benchmarks share: a fake Discord on loopback with the real bot logged in to
it, a headless Chromium, a page server, and tiny training configs.

It lives outside tests/ so that bench/ can use it without importing the test suite (pytest fixtures
stay in the conftest.py files). It is never imported by bot/, trainer/, edge/, storage/, fieldlens/ or
cluster/: tests/test_import_wall.py holds that line.
"""
