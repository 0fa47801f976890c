"""The machinery under the equations: array backends, input checks, size limits, threads,
the finite-difference gradient check, and the argument types of both command lines.
Imports nothing else of rnn_manual."""
