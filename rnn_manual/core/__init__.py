"""The machinery under the equations: array backends, input checks, size limits, and the
finite-difference gradient check. Imports nothing else of rnn_manual."""
