"""Vision analyses: feature visualisation, dataset examples, weights, tuning curves, Gabor fits."""
