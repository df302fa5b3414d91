"""Throughput benchmarks, run as scripts (see bench/README.md)."""
