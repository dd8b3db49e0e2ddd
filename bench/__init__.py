"""recbench: hardware-cost benchmarking for LLM-based recommender systems."""

__version__ = "0.1.0"
