"""Word-vector analyses: :mod:`.vectors` (the words, their vectors and counts) and
:mod:`.geometry` (neighbours, analogies, axes, the bias probe, 2-D coordinates)."""
