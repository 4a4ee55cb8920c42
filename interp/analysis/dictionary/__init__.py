"""Dictionary features: sparse autoencoders on a layer's activations, and their metrics.

>>> from interp.analysis.dictionary import train_sae, sae_metrics
>>> trained = train_sae(run, "blocks.1.hook_resid_post", k=16, tokens=200_000)
>>> sae_metrics(trained, run).table()
"""
