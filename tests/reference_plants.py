"""Bugs the tests plant in rnn_manual/reference.py besides the diagnosis's catalogue: the
planted-bug tests of test_reference.py run them beside the catalogue's, and test_anchors.py
counts them among what finds the reference's statements (so the statements carry the mark).
"""

from __future__ import annotations

from rnn_torch.planting import Plant

#: name -> the plant (rnn_torch.planting), for bugs the catalogue names no entry for.
EXTRA: dict[str, Plant] = {
    # The catalogue's LSTM entry stops dh_next at its source; this one only leaves it out of
    # dL/dh_t, so that dL/dh_{-1} still gets it.
    "lstm: dh_next left out of dL/dh_t": Plant(
        "lstm_backward", "dh = dz[t] @ W_hy.T + dh_next", "dh = dz[t] @ W_hy.T"
    ),
    # The catalogue moves b_hn out of the reset product; this one drops it from the forward.
    "gru forward: b_hn left out": Plant(
        "gru_forward", "hn[t] = h[t] @ W_hn + b_hn", "hn[t] = h[t] @ W_hn"
    ),
}
