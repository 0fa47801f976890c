"""`python -m rnn_torch.diagnose FILE`: the same as `python -m rnn_torch diagnose FILE`."""

import sys

from .cli import main

sys.exit(main())
