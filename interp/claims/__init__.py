"""Claim checks: published claims about what networks learn, checked on a model."""
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, Verdict,
                       check_claims, claims_dir, get_claim, list_claims, load_claims, save_claims)
