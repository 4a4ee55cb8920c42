"""Model families and their registry (``interp models`` lists them)."""

from .registry import (ModelSpec, build_model, count_parameters, create_model, get_spec, list_models, register_model,
                       reinitialized)

__all__ = ["ModelSpec", "build_model", "count_parameters", "create_model", "get_spec", "list_models", "register_model",
           "reinitialized"]
