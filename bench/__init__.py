"""CDBench: a benchmark for automated circuit-discovery methods on transformers."""
