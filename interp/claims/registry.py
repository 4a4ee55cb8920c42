"""The claim registry: published claims turned into checks that return a verdict with evidence.

Each :class:`Claim` has an id, a one-sentence statement, its source (article and
section), the models and layers it applies to, its thresholds and a check function.
:func:`check_claims` runs the checks on a run and returns :class:`ClaimResult` objects:
a :class:`Verdict` (``supported``, ``not supported`` or ``inconclusive``, with the
reason) and the evidence (numbers, a per-unit table, the units found, data for figures).
Saving them (claims.json and the figures) is :mod:`interp.results.claims`'s job.

>>> results = check_claims(load_run("tutorial"), ["gabor-first-layer", "curve-detectors"])
>>> results[0].verdict.status, results[0].verdict.reason
>>> interp.results.save(ClaimSet(results), "reports/tutorial/claims")   # claims.json + PNG figures

Thresholds compare with a null wherever one exists: the same architecture re-initialised
with its own initialisation (:func:`reinitialized`, several seeds), so a verdict says "more
than chance would give", not only "above an absolute cut-off". A check that cannot decide
(the claim does not apply to the model, weights are missing, too few units) returns
``inconclusive`` with the reason; it never guesses.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import torch

from ..errors import InterpError, unknown

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
STATUSES = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)

KINDS = ("vision", "inceptionv1", "transformer", "classifier")
"""What a claim needs: any conv net; Lucent's InceptionV1; an attention-only transformer; any classifier."""

@dataclass(frozen=True)
class Verdict:
    """``status`` (supported / not supported / inconclusive) and the reason in one or two sentences."""

    status: str
    reason: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class ClaimResult:
    """The verdict of one claim on one model, with its evidence.

    ``numbers``: named scalars (fractions, scores, counts); ``table``: one row per unit
    (or head) examined; ``found``: the units that satisfy the claim (``"conv2:3"``);
    ``thresholds``: the cut-offs used, null-derived ones included; ``data``: lists for
    figures; ``figures``: PNG file names, filled in by :func:`interp.results.claims.save_claims`; ``headline``:
    the verdict's number with its CI and null quantile.
    """

    claim: str
    verdict: Verdict
    statement: str = ""
    source: str = ""
    url: str = ""
    run: str = ""
    layer: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    """The options it was checked with (seed, null models, images, layer): results of other
    settings are kept beside it (:func:`interp.results.claims.save_claims`)."""
    headline: dict[str, Any] = field(default_factory=dict)
    """The number the verdict turns on, with its 95% bootstrap CI and the null quantile it is
    compared to (:func:`interp.stats.headline`); empty where a check has none."""
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return self.verdict.status

    def to_dict(self) -> dict:
        d = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        d["verdict"] = {"status": self.verdict.status, "reason": self.verdict.reason}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ClaimResult":
        d = dict(d)
        d["verdict"] = Verdict(**d["verdict"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ClaimSet:
    """The claim results of one run, as saved together in ``claims.json`` (the results store's kind ``claims``).

    ``results``: the latest result of each claim, in the order they were first checked;
    ``earlier``: results of earlier checks with other settings, kept beside them.

    >>> path = interp.results.save(ClaimSet(check_claims(run)), "reports/tutorial/claims")   # .../claims.json
    >>> [r.claim for r in interp.results.load(path).results]
    """

    results: list[ClaimResult]
    earlier: list[ClaimResult] = field(default_factory=list)
    run: str = ""
    """The run's name (default: the first result's)."""

    def __post_init__(self):
        if not self.run:
            self.run = next((r.run for r in self.results + self.earlier if r.run), "")


def _plain(value: Any) -> Any:
    """Tensors, numpy values and tuples as JSON types (floats to six significant digits keep the file small)."""
    if isinstance(value, torch.Tensor):
        return _plain(value.detach().cpu().tolist())
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # NaN and infinities are not JSON
        return float(f"{value:.6g}")  # six significant digits: small p-values survive
    return value


@dataclass
class CheckOptions:
    """Options every check receives; each check reads the ones it needs."""

    device: str | None = None
    """Move the model there first (``auto``, ``cpu``, ``cuda``); None leaves it where it is."""
    progress: bool = False
    seed: int = 0
    null_models: int | None = None
    """Re-initialised copies of the model that form the null distribution; None: each claim's own
    default (32 for the unit-level vision claims, 8 for the transformer claims)."""
    layer: str | None = None
    """Override the layer a vision claim examines (default: the claim's own choice)."""
    images: torch.Tensor | None = None
    """Images (uint8 or [0, 1] float, ``[N, C, H, W]``) for data-based checks; default: the run's test split."""
    labels: torch.Tensor | None = None
    """Labels of ``images`` (the Clever Hans check)."""
    max_images: int = 1000
    cue: str | None = None
    """A suspected cue token for the ``cue-token`` check."""
    reference: Any = None
    """A run (or its name) trained without the suspected cue, for the Clever Hans check's comparison."""


@dataclass(frozen=True)
class Claim:
    """A published claim and its check.

    ``check(run, options) -> ClaimResult``; ``applies(run) -> None`` when the claim applies
    to the run, else the reason it does not. Its figures are drawn when it is saved
    (:data:`interp.results.claims_figures.FIGURES`).
    """

    id: str
    statement: str
    source: str
    url: str
    applies_to: str
    kind: str
    thresholds: dict
    check: Callable[[Any, CheckOptions], ClaimResult]
    applies: Callable[[Any], str | None]
    on_request: bool = False
    """Checked only when named (it needs an input from the user, such as a cue token)."""

    def result(self, status: str, reason: str, **evidence: Any) -> ClaimResult:
        """A :class:`ClaimResult` of this claim (statement, source and thresholds filled in)."""
        evidence.setdefault("thresholds", dict(self.thresholds))
        return ClaimResult(self.id, Verdict(status, reason), self.statement, self.source, self.url, **evidence)


_CLAIMS: dict[str, Claim] = {}
_MODULES = ("first_layer", "curves", "layer_statistics", "inception", "transformers", "induction_circuit",
            "clever_hans", "cue_token", "universality", "curve_circuit")
"""The modules whose claims register when imported, in the order :func:`list_claims` lists them."""


def register_claim(claim: Claim) -> Claim:
    if claim.kind not in KINDS:
        raise ValueError(f"claim kind must be one of {KINDS}")
    _CLAIMS[claim.id] = claim
    return claim


def _ensure_loaded() -> None:
    # The claim modules register their claims when imported; done lazily (nothing at import time).
    import importlib

    for name in _MODULES:
        importlib.import_module(f"{__package__}.{name}")


def _module_rank(claim: Claim) -> int:
    module = getattr(claim.check, "__module__", "").rpartition(".")[2]
    return _MODULES.index(module) if module in _MODULES else len(_MODULES)


def list_claims(kind: str | None = None) -> list[Claim]:
    """Every registered claim (of one ``kind``), in the order of :data:`_MODULES`, then of
    registration within a module: the same order whichever module was imported first.

    >>> [c.id for c in list_claims("transformer")]
    ['induction-k-composition', 'no-induction-one-layer', 'copying-ov-positive', 'induction-circuit', 'cue-token']
    """
    _ensure_loaded()
    claims = [c for c in _CLAIMS.values() if kind is None or c.kind == kind]
    return sorted(claims, key=_module_rank)  # stable: registration order within a module


def get_claim(claim_id: str) -> Claim:
    """The claim called ``claim_id``; an error listing every id otherwise."""
    _ensure_loaded()
    if claim_id not in _CLAIMS:
        raise unknown("claim id", claim_id, list(_CLAIMS))
    return _CLAIMS[claim_id]


def run_kind(run: Any) -> str:
    """``inceptionv1``, ``transformer``, ``vision`` (a conv classifier), ``classifier`` or ``other``."""
    config = getattr(run, "config", None)
    model = getattr(config, "model", "")
    if model == "inceptionv1":
        return "inceptionv1"
    task = getattr(config, "task", "")
    if task == "language-model":
        return "transformer"
    if task == "image-classification":
        has_conv = any(isinstance(m, torch.nn.Conv2d) for m in run.model.modules())
        return "vision" if has_conv else "classifier"
    return "other"


def check_settings(options: CheckOptions) -> dict[str, Any]:
    """The options that can change a verdict, as recorded with each result (``images``: ``given`` when
    the caller passed images, else how many test images the data-based checks sample)."""
    settings = {"seed": options.seed, "null_models": options.null_models or "default",
                "images": "given" if options.images is not None else options.max_images}
    if options.layer:
        settings["layer"] = options.layer
    if options.cue:
        settings["cue"] = options.cue
    if options.reference is not None:
        settings["reference"] = str(getattr(options.reference, "name", options.reference))
    return settings


def default_claims(run: Any) -> list[Claim]:
    """The claims that apply to a run, checked when none are named."""
    return [c for c in list_claims() if not c.on_request and c.applies(run) is None]


def check_claims(run: Any, ids: list[str] | None = None, *, options: CheckOptions | None = None,
                 log: Callable[[str], None] | None = None, **kwargs: Any) -> list[ClaimResult]:
    """Check claims on a run; returns one :class:`ClaimResult` per claim, in order.

    ``ids``: claim ids (default: every claim that applies to the run). A named claim that
    does not apply comes back ``inconclusive`` with the reason; an unknown id is an
    :class:`InterpError` that lists the valid ones. ``kwargs`` set :class:`CheckOptions`
    fields (``device``, ``seed``, ``null_models``, ``layer``, ``images``...).

    >>> [r.verdict.status for r in check_claims(run, ["weight-banding"])]
    ['not supported']
    """
    if options is None:
        options = CheckOptions(**kwargs)
    elif kwargs:
        options = dataclasses.replace(options, **kwargs)
    if not hasattr(run, "config") or not hasattr(run, "model"):
        raise InterpError(f"check_claims takes a run (interp.load_run(...)); wrap a bare {type(run).__name__} with "
                          f"interp.claims.model_run(model, input_shape=(3, H, W))")
    claims = [get_claim(i) for i in ids] if ids else default_claims(run)
    if options.device is not None:
        from ..device import resolve_device

        run.model.to(resolve_device(options.device))
    results = []
    for claim in claims:
        start = time.perf_counter()
        if log:
            log(f"checking {claim.id} ...")
        reason = claim.applies(run)
        if reason is not None:
            result = claim.result(INCONCLUSIVE, f"does not apply: {reason}")
        else:
            result = claim.check(run, options)
        result.run = result.run or getattr(run, "name", "")
        result.settings = check_settings(options)
        result.seconds = round(time.perf_counter() - start, 3)
        results.append(result)
    return results


def model_run(model: torch.nn.Module, *, name: str = "model", input_shape: tuple[int, ...] = (3, 32, 32),
              mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25),
              classes: tuple[str, ...] = ()) -> Any:
    """A :class:`~interp.runs.Run` around any image model, so claims can be checked on it.

    ``mean``/``std`` are the preprocessing the model expects for [0, 1] images.

    >>> results = check_claims(model_run(my_net, input_shape=(3, 64, 64)), ["curve-detectors"])
    """
    from ..config import DataConfig, RunConfig
    from ..runs import Run, check_run_name, models_dir

    data = DataConfig(name="custom", input_shape=tuple(input_shape), mean=tuple(mean), std=tuple(std),
                      classes=tuple(classes))
    config = RunConfig(model="custom", family="custom", task="image-classification", model_config={}, data=data)
    return Run(models_dir() / check_run_name(name), config, model.eval())
