"""Files: the model and checkpoint schema, on a small safe `.npz` reader and atomic writer."""
