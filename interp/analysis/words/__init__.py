"""Word-vector analyses: neighbours, analogies, axes, bias probes."""
