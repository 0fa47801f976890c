"""`python -m rnn_torch diagnose FILE`: check a learner's own backward pass.

A learner's file defines loss_and_grads with rnn_manual.reference's signature, or the
functions of a course (CS231n's rnn_layers.py, the Coursera step-by-step notebook,
min-char-rnn's lossFun), which styles.py wraps into that protocol. The diagnosis runs it
on structured probes in a separate process, judges every gradient
against PyTorch autograd, localizes what is wrong (which gradients, from which sequence
length, on which factor it depends, from which distance back in time, which gate) and
names the known bug it equals, if any. See diagnosis.py for the method.

    api.py        diagnose(): a file of any style, or a function
    detect.py     which style a file is written in, from its functions' names and parameters
    styles.py     each course's functions answering the one protocol (loaded by the child)
    courses.py    a course file judged function by function, in the learner's names
    probes.py     the structured cases, and autograd's answers to them (Oracle: the twin)
    sandbox.py    a learner's file run on them in a child process (child.py), time-limited
    answers.py    what a run gives back: Answer (one probe's), Run (all of them)
    processes.py  the file's processes: found in /proc, their writes counted, all killed
    jobfolder.py  the job folder: the job written, the answers read back, listed, removed
    diagnosis.py  judging and localizing; diagnose(), the Python API
    catalogue.py  known bugs, planted in rnn_manual/reference.py, for naming
    findings.py   the findings in words, with pointers into docs/walkthrough.md
    report.py     Report: text and JSON;  cli.py: the command line

    from rnn_torch.diagnose import diagnose
    report = diagnose("exercises/rnn.py", cell="rnn")  # or a function instead of a path
    print(report.text()); report.to_json(); report.exit_code
"""

from .api import diagnose
from .cli import add_parser, main, run
from .diagnosis import DEFAULT_TIMEOUT
from .report import Report, StyleReport, Verdict

__all__ = [
    "DEFAULT_TIMEOUT",
    "Report",
    "StyleReport",
    "Verdict",
    "add_parser",
    "diagnose",
    "main",
    "run",
]
