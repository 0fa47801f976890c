"""Data shipped with the package: bptt.txt, the default text of `python -m rnn_manual text`
(the project's own writing)."""
