"""Pipelines: compute what is missing for the report, the CLI and the demo (they call analyses and save results)."""
