"""The application: the command line (train, add, evaluate, plot) and the figures."""
