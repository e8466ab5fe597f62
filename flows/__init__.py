"""Prefect flows and the layerflow command line (the top of flows -> tasks -> libraries)."""
