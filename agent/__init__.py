"""Planner, executor, success detectors, safety shield, backends, traces, benchmarks and the
front-ends. The only package that wires the others together."""
