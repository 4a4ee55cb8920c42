"""The planted-truth suite as a table: every claim check run on models whose answer was built in.

Runs the planted-truth tests (tests/test_planted_*.py and the planted / random cases of the
claim test files, slow seeds included) and prints one row per case: the claim, the verdict
the case was built to get, and whether the check got it (a case's test asserts exactly that
verdict). Cases whose test checks a mechanism rather than a verdict are left out.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/planted.py          # markdown table + right/total
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/claims/test_planted_first_layer.py", "tests/claims/test_planted_heads.py",
         "tests/claims/test_planted_clever_hans.py", "tests/claims/test_claims_vision.py",
         "tests/claims/test_claims_transformers.py", "tests/claims/test_planted_universality.py",
         "tests/claims/test_planted_curve_circuit.py", "tests/claims/test_planted_induction_circuit.py"]

# test-name pattern -> (claim, expected verdict); the first match wins.
CASES = [
    (r"planted_gabors|colour_contrast_with_gabors", "gabor-first-layer", "supported"),
    (r"white_noise_not|blurred_white_noise|other_blurs|shuffled_gabors", "gabor-first-layer", "not supported"),
    (r"gabor_first_layer_random", "gabor-first-layer", "not supported"),
    (r"orientation_tiling_random", "orientation-tiling", "not supported"),
    (r"complex_gabor_planted", "complex-gabors", "supported"),
    (r"complex_gabor_random", "complex-gabors", "not supported"),
    (r"curve_detector_planted", "curve-detectors", "supported"),
    (r"curve_detectors_random", "curve-detectors", "not supported"),
    (r"high_low_planted", "high-low-frequency", "supported"),
    (r"high_low_random", "high-low-frequency", "not supported"),
    (r"exponential_tail_planted", "exponential-tail", "supported"),
    (r"exponential_tail_random", "exponential-tail", "not supported"),
    (r"weight_banding_gap_planted", "weight-banding", "supported (planted) / not supported (random)"),
    (r"weight_banding_flatten", "weight-banding", "not supported (banded) / inconclusive (random)"),
    (r"trained_two_layer_model_has_the_induction", "induction-k-composition",
     "supported (trained) / inconclusive (untrained)"),
    (r"induction_k_composition_planted", "induction-k-composition", "supported"),
    (r"induction_k_composition_random", "induction-k-composition", "inconclusive"),
    (r"without_ablation_effect", "induction-k-composition", "not supported or inconclusive"),
    (r"one_layer_model_has_no_induction|one_layer_random", "no-induction-one-layer", "supported"),
    (r"trained_on_one_length|positional_head_is_not", "no-induction-one-layer", "supported (positional flagged)"),
    (r"copying_planted", "copying-ov-positive", "supported"),
    (r"copying_head_with_negative|copying_random", "copying-ov-positive", "not supported"),
    (r"cue_token_planted", "cue-token", "supported"),
    (r"cue_token_random", "cue-token", "not supported"),
    (r"watermark_net_is_a_clever_hans|watermark_net_against", "clever-hans", "supported"),
    (r"clean_net_is_not_a_clever_hans|plain_shapes_is_not", "clever-hans", "not supported"),
    (r"mark_that_does_not_fit", "clever-hans", "inconclusive"),
    (r"two_training_seeds_match", "universality-across-seeds", "supported"),
    (r"own_shuffled_weights", "universality-across-seeds", "not supported"),
    (r"tangent_arc_is_supported", "curve-circuit", "supported"),
    (r"random_arrangement_is_not", "curve-circuit", "not supported or inconclusive"),
    (r"crossing_the_curve_refute", "curve-circuit", "not supported"),
    (r"line_detector_net_has_no_curve", "curve-circuit", "inconclusive (no detector)"),
    (r"trained_model_supports_the_circuit", "induction-circuit", "supported"),
    (r"untrained_model_has_no_gain", "induction-circuit", "inconclusive"),
]


class Collect:
    def __init__(self):
        self.rows = []

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
            return
        name = report.nodeid.split("::")[-1]
        for pattern, claim, expected in CASES:
            if re.search(pattern, name):
                self.rows.append((report.nodeid.split("::")[0].split("/")[-1], name, claim, expected,
                                  report.outcome, round(report.duration, 1)))
                return


def main() -> int:
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on
    collect = Collect()
    start = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "slow or not slow", "--no-header", "-rN",
                        *[str(ROOT / f) for f in FILES]], plugins=[collect])
    right = sum(r[4] == "passed" for r in collect.rows)
    print("\n| file | case | claim | expected verdict | got it | s |\n| --- | --- | --- | --- | --- | ---: |")
    for file, name, claim, expected, outcome, seconds in collect.rows:
        print(f"| {file} | `{name}` | {claim} | {expected} | {'yes' if outcome == 'passed' else 'NO'} | {seconds} |")
    print(f"\n{right}/{len(collect.rows)} planted cases got the verdict they were built for "
          f"({time.perf_counter() - start:.0f} s; pytest exit {int(code)})")
    return 0 if right == len(collect.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
