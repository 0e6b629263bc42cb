"""Tests of the shell and SSH adapters and the loopback SSH server."""
