"""Bugs learners make, as edits of the correct learner files in this folder.

VARIANTS maps a file name to its bugs: (bug name, old text, new text), where the old text
occurs exactly once in the correct file. A bug that has to touch two places (a wrong
forward pass with its backward pass kept consistent) is two entries with the same name;
`variant` applies every entry of the name, in order. `names` lists each name once.

Not every bug changes the gradients the file returns: "dh_written_in_place" returns the
right gradients but adds into the caller's dh, and "dba_not_summed_over_m" stops with a
broadcasting error instead of returning wrong numbers.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

CS231N = "cs231n_rnn_layers.py"
DLS = "dls_step_by_step.py"
MINCHAR = "minchar.py"

_RNN_CALL = "rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])"

VARIANTS: dict[str, list[tuple[str, str, str]]] = {
    CS231N: [
        # the loss averaged over every step as well as the batch (CS231n sums over time)
        (
            "softmax_loss_mean_over_steps",
            "/ N\n    dx_flat = probs.copy()",
            "/ (N * T)\n    dx_flat = probs.copy()",
        ),
        # dx not masked: padded steps send a gradient back
        ("softmax_dx_unmasked", "    dx_flat *= mask_flat[:, None]\n", ""),
        # dx from the upstream dnext_h, not through the tanh: only dx goes wrong
        ("dx_from_dnext_h", "    dx = dtanh.dot(Wx.T)\n", "    dx = dnext_h.dot(Wx.T)\n"),
        # rnn_backward adds the carried gradient into the caller's dh, then reads it back:
        # the gradients are right, the argument is changed
        (
            "dh_written_in_place",
            f"        dx_t, dprev_h, dWx_t, dWh_t, db_t = {_RNN_CALL}\n",
            "        dh[:, t, :] += dprev_h\n"
            "        dx_t, dprev_h, dWx_t, dWh_t, db_t = "
            "rnn_step_backward(dh[:, t, :], cache[t])\n",
        ),
        # the weight gradient of the last step processed (t = 0) replaces the sum
        ("dWx_assigned_not_summed", "        dWx += dWx_t\n", "        dWx = dWx_t\n"),
        # the gradient of h_t from step t + 1 is computed but never passed back
        ("dprev_h_not_carried", _RNN_CALL, "rnn_step_backward(dh[:, t, :], cache[t])"),
        # only the last hidden state gets the upstream gradient, as if the loss were on
        # h_T alone; the other dh[:, t] are ignored
        (
            "upstream_dh_dropped",
            "    dprev_h = np.zeros((N, H))\n",
            "    dprev_h = dh[:, -1, :]\n",
        ),
        ("upstream_dh_dropped", _RNN_CALL, "rnn_step_backward(dprev_h, cache[t])"),
        # tanh' written with h instead of h squared
        (
            "tanh_derivative_1_minus_h",
            "dtanh = dnext_h * (1 - next_h**2)",
            "dtanh = dnext_h * (1 - next_h)",
        ),
        # Wh is square, so the missing transpose keeps the shapes
        ("Wh_not_transposed", "dprev_h = dtanh.dot(Wh.T)", "dprev_h = dtanh.dot(Wh)"),
        # the recurrent weight gradient paired with the step's own output, not its input
        ("dWh_uses_next_h", "dWh = prev_h.T.dot(dtanh)", "dWh = next_h.T.dot(dtanh)"),
        # the gate blocks in PyTorch's order i, f, g, o instead of CS231n's i, f, o, g,
        # in the forward and (consistently) in the backward step
        (
            "lstm_gates_pytorch_order",
            "    o = sigmoid(a[:, 2 * H : 3 * H])\n    g = np.tanh(a[:, 3 * H :])\n",
            "    g = np.tanh(a[:, 2 * H : 3 * H])\n    o = sigmoid(a[:, 3 * H :])\n",
        ),
        (
            "lstm_gates_pytorch_order",
            "np.hstack((dai, daf, dao, dag))",
            "np.hstack((dai, daf, dag, dao))",
        ),
        # next_h = o * c without the tanh, in the forward and (consistently) the backward
        ("lstm_no_tanh_on_cell", "next_h = o * np.tanh(next_c)", "next_h = o * next_c"),
        (
            "lstm_no_tanh_on_cell",
            "    tanh_c = np.tanh(next_c)\n"
            "    do = dnext_h * tanh_c\n"
            "    # the cell state gets gradient directly and through next_h = o * tanh(next_c)\n"
            "    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)\n",
            "    do = dnext_h * next_c\n    dc = dnext_c + dnext_h * o\n",
        ),
        # lstm_backward throws dprev_c away: every step gets dnext_c = 0
        (
            "lstm_dnext_c_not_carried",
            "dxt, dnext_h, dnext_c, dWxt, dWht, dbt = lstm_step_backward(",
            "dxt, dnext_h, _, dWxt, dWht, dbt = lstm_step_backward(",
        ),
        # inside the step, the cell gradient arriving from step t + 1 is left out
        (
            "lstm_dc_ignores_dnext_c",
            "dc = dnext_c + dnext_h * o * (1 - tanh_c**2)",
            "dc = dnext_h * o * (1 - tanh_c**2)",
        ),
        # the candidate g differentiated as if it were a sigmoid
        ("lstm_g_sigmoid_derivative", "dag = dg * (1 - g**2)", "dag = dg * g * (1 - g)"),
        # fancy-index += keeps one update per repeated word instead of adding them all
        ("embedding_fancy_index_add", "np.add.at(dW, x, dout)", "dW[x] += dout"),
    ],
    DLS: [
        # da0 returned as the upstream da of step 0, not what the loop carried back
        ("da0_is_the_upstream", "    da0 = da_prevt\n", "    da0 = da[:, :, 0].copy()\n"),
        # the split of dconcat as [xt; a_prev] while the forward stacks [a_prev; xt]
        (
            "lstm_dconcat_split_x_first",
            "    da_prev = dconcat[:n_a, :]\n    dxt = dconcat[n_a:, :]\n",
            "    dxt = dconcat[:n_x, :]\n    da_prev = dconcat[n_x:, :]\n",
        ),
        # the loop that carries neither gradient: every step sees only da[:, :, t] and a
        # zero dc, and da0 is step 0's da_prev
        (
            "lstm_backward_no_carry",
            "        gradients = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])\n"
            '        da_prevt = gradients["da_prev"]\n'
            '        dc_prevt = gradients["dc_prev"]\n',
            "        gradients = lstm_cell_backward(da[:, :, t], dc_prevt, caches[t])\n",
        ),
        # the bias gradient per example, (n_a, m): rnn_backward's dba += fails to broadcast
        (
            "dba_not_summed_over_m",
            "dba = np.sum(dtanh, axis=1, keepdims=True)",
            "dba = dtanh",
        ),
        ("dWax_assigned_not_summed", "        dWax += dWaxt\n", "        dWax = dWaxt\n"),
        # the basic RNN's loop passes only da[:, :, t] to each step
        (
            "rnn_da_prevt_not_carried",
            "rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])",
            "rnn_cell_backward(da[:, :, t], caches[t])",
        ),
        ("dWaa_uses_a_next", "dWaa = np.dot(dtanh, a_prev.T)", "dWaa = np.dot(dtanh, a_next.T)"),
        # dc_prev only through the forget gate from dc_next, not through a_next
        (
            "lstm_dc_prev_missing_da_path",
            "dc_prev = dc_next * ft + ot * (1 - np.tanh(c_next) ** 2) * ft * da_next",
            "dc_prev = dc_next * ft",
        ),
        # the output gate's sigmoid derivative forgotten
        (
            "lstm_dot_missing_sigmoid_derivative",
            "dot = da_next * np.tanh(c_next) * ot * (1 - ot)",
            "dot = da_next * np.tanh(c_next)",
        ),
    ],
    MINCHAR: [
        # dWhy paired with h_{t-1} instead of h_t (a catalogue entry of the reference's)
        ("dWhy_uses_previous_h", "dWhy += np.dot(dy, hs[t].T)", "dWhy += np.dot(dy, hs[t - 1].T)"),
        # dy = p instead of p - onehot(target)
        (
            "dy_minus_one_forgotten",
            "        dy[targets[t]] -= 1  # softmax + cross-entropy gradient\n",
            "",
        ),
        # the one subtracted on the row of the input character instead of the target
        ("dy_row_of_input", "dy[targets[t]] -= 1", "dy[inputs[t]] -= 1"),
        # the gradient from step t + 1 never reaches h_t
        ("dhnext_not_added", "dh = np.dot(Why.T, dy) + dhnext", "dh = np.dot(Why.T, dy)"),
        # dWhh paired with h_t instead of h_{t-1}
        (
            "dWhh_uses_hs_t",
            "dWhh += np.dot(dhraw, hs[t - 1].T)",
            "dWhh += np.dot(dhraw, hs[t].T)",
        ),
        # Whh is square, so the missing transpose keeps the shapes
        (
            "dhnext_Whh_not_transposed",
            "dhnext = np.dot(Whh.T, dhraw)",
            "dhnext = np.dot(Whh, dhraw)",
        ),
        (
            "tanh_derivative_1_minus_h",
            "dhraw = (1 - hs[t] * hs[t]) * dh",
            "dhraw = (1 - hs[t]) * dh",
        ),
    ],
}


def names(file: str) -> list[str]:
    """The bug names of a file, each once, in the order of VARIANTS."""
    return list(dict.fromkeys(name for name, _, _ in VARIANTS[file]))


def variant(file: str, name: str) -> str:
    """The text of `file` (a name in this folder) with the bug `name` planted: every edit
    of that name applied in order, each old text found exactly once."""
    edits = [(old, new) for bug, old, new in VARIANTS[file] if bug == name]
    assert edits, f"{file} has no variant {name!r}"
    text = (HERE / file).read_text(encoding="utf-8")
    for old, new in edits:
        count = text.count(old)
        assert count == 1, f"{file}, {name}: {old!r} occurs {count} times, not once"
        text = text.replace(old, new)
    return text
