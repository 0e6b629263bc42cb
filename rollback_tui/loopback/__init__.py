"""Loopback stand-ins for remote systems (an SSH server on 127.0.0.1) used by tests, the demo and benchmarks."""
