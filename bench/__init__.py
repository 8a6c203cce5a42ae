"""Benchmarks: python bench/run.py --help; the data generator is bench.generate."""
