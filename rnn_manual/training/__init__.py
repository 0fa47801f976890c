"""Training: the addition task's data and the optimisers, then one module per question:

bits.py        integers as bit sequences, and batches of sums
optim.py       SGD, momentum, Adam, Adagrad, gradient clipping
evaluation.py  how right a model is: exact-match accuracy, run in passes that fit
state.py       what a run is: its config, history and state
stopping.py    when a run is done: which sums, evaluated when
loop.py        the loop itself: one update after another, checkpoints, stop signals
progress.py    how far long work has got, on stderr
tutorial.py    the replay of the tutorial's exact run

and the character task (min-char-rnn's), one module per question too:

corpus.py      the text as numbers: vocabulary, held-out tail, chunks of B streams
language.py    a run on a text: its config, state, update and loop
sampling.py    what a character model says: samples, and its held-out loss
"""
