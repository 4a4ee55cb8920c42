"""Analyses: plain functions that take a run and return data objects (saved as JSON + PNG)."""
