"""Causal interventions and circuit discovery shared by CNNs and transformers.

One vocabulary for both model kinds: a *graph* of named nodes (``conv1:3`` channels of a
CNN; ``L0H1`` heads, ``mlp0``, ``embed``, ``logits`` of a transformer) and the edges
between them; *edge scores* from a method (activation patching, EAP, EAP-IG); and a
*circuit* = a set of kept edges, everything else mean-ablated, judged by its faithfulness
against random circuits of the same size (:mod:`.discovery`).
"""
