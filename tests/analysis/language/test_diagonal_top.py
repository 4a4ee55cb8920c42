"""diagonal_top (the copying heads' behavioural score) computed in chunks equals the full circuit's."""

import torch


def test_chunked_diagonal_top_equals_the_full_ov_circuit():
    from interp.analysis.language.bridge import to_bridge
    from interp.analysis.language.circuits import diagonal_top
    from interp.zoo import create_model

    torch.manual_seed(0)
    bridge = to_bridge(create_model("attn-only", n_layer=2, vocab_size=40, block_size=16), fold_ln=True)
    full = torch.zeros(bridge.cfg.n_layers, bridge.cfg.n_heads)
    for layer in range(bridge.cfg.n_layers):
        for head in range(bridge.cfg.n_heads):
            m = (bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U).AB
            full[layer, head] = (m.argmax(-1) == torch.arange(len(m))).float().mean()
    assert full.sum() > 0  # the check can tell chunks apart from a constant
    for chunk in (1, 7, 40, 1024):
        torch.testing.assert_close(diagonal_top(bridge, chunk=chunk), full)
