"""Transformer analyses on TransformerBridge models: heads, logit lens, QK/OV circuits, patching."""
