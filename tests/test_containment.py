"""`diagnose FILE` contains the learner's file and never hangs (issue 26, items 4-7 and 14).

Hostile learner files, each of a kind a learner's file can be (on purpose or not):

- processes: a setsid grandchild holding the output pipe, a double-forked daemon that
  closes its output, raises its limits back to the hard ones and writes outside the scratch
  folder; each must be dead, by pid, when diagnose returns, and diagnose must return;
- the job folder: its status file or answers file replaced by a FIFO, status lines nested
  deep, a list, a missing key, an .npy header claiming 2**40 values, folders nested past
  Python's recursion limit: one line naming what is wrong, never a traceback or a hang;
- an exception whose __str__ raises: named by its type, not "without an exception";
- the limits: not raisable (hard ones), a total for what the file writes, every file
  written outside the scratch folder reported, the time limit's range;
- interrupts: Ctrl-C and SIGTERM to the command line end the file's processes, remove the
  job folder, print one line and exit 130 and 143; the Python API lets Ctrl-C through;
- a folder or a FIFO given as the file: what it is, in one line, exit 2.

Every hostile process records its pid in a folder of the test's (RNN_TEST_PIDS); whatever
the outcome, the test kills those left at its end.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import numpy as np
import pytest
from processes import ROOT

from rnn_torch.diagnose import diagnose, main, sandbox
from rnn_torch.diagnose.diagnosis import Settings, probes_for
from rnn_torch.diagnose.report import Report

#: The probes of the short diagnosis every test asks for (14 probes).
SHORT = ["--activation", "sigmoid", "--loss", "mse", "--bias"]
SHORT_API = {"activation": "sigmoid", "loss": "mse", "bias": True}
#: Seconds after which a hung diagnose fails its test (a run here takes 2 to 5).
HANG = 45

PRELUDE = """\
import os
import sys
import time

from rnn_manual.reference import loss_and_grads as reference

PIDS = os.environ["RNN_TEST_PIDS"]
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.getcwd(), os.pardir, "out")  # diagnose's job folder, by its layout


def record(role, text=""):
    with open(os.path.join(PIDS, f"{role}-{os.getpid()}"), "w") as file:
        file.write(text)


def quiet():
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


"""

#: At import, a grandchild in a session of its own sleeps a minute with the output pipes.
SETSID_HOLDS_THE_PIPE = (
    PRELUDE
    + """\
if os.fork() == 0:
    os.setsid()
    record("grandchild")
    time.sleep(60)
    os._exit(0)
loss_and_grads = reference
"""
)

#: At import, a daemon (setsid, double fork, output closed) raises its soft limits to the
#: hard ones and appends to a file beside the learner's for a minute.
DAEMON = (
    PRELUDE
    + """\
import resource

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        quiet()
        for limit in (resource.RLIMIT_FSIZE, resource.RLIMIT_CPU, resource.RLIMIT_AS):
            try:
                resource.setrlimit(limit, (resource.getrlimit(limit)[1],) * 2)
            except (ValueError, OSError):
                pass
        record("daemon")
        with open(os.path.join(HERE, "stray.bin"), "ab") as out:
            for _ in range(6000):
                out.write(b"x" * 4096)
                out.flush()
                time.sleep(0.01)
    os._exit(0)
loss_and_grads = reference
"""
)

#: At the first call, a file of the job folder's out/ becomes a FIFO.
FIFO = (
    PRELUDE
    + """\
done = []


def loss_and_grads(params, x, y, **kw):
    if not done:
        done.append(1)
        target = os.path.join(OUT, {name!r})
        os.unlink(target)
        os.mkfifo(target)
    return reference(params, x, y, **kw)
"""
)

#: At the first call, status.jsonl (and answers.bin) are replaced by what the test says.
REPLACE = (
    PRELUDE
    + """\
done = []


def replace(name, data):
    with open(os.path.join(OUT, name + ".new"), "wb") as file:
        file.write(data)
    os.replace(os.path.join(OUT, name + ".new"), os.path.join(OUT, name))


def loss_and_grads(params, x, y, **kw):
    if not done:
        done.append(1)
        replace("status.jsonl", {status!r})
        if {answers!r} is not None:
            replace("answers.bin", {answers!r})
    return reference(params, x, y, **kw)
"""
)

LOADED = b'{"stage": "load", "status": "ok"}\n'
HUGE_HEADER = io.BytesIO()
np.lib.format.write_array_header_1_0(
    HUGE_HEADER, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
)
#: name -> (status.jsonl, answers.bin or None, what the one error line says, a regex)
MALFORMED = {
    "nested JSON": (
        LOADED + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        None,
        r"status.jsonl line 2 is nested 10000 deep",
    ),
    "a line that is a list": (LOADED + b"[1, 2]\n", None, r"line 2 is a list of 2, not a"),
    "a missing key": (LOADED + b'{"arrays": []}\n', None, r"line 2 has no 'status'"),
    "a load line with no status": (b'{"stage": "load"}\n', None, r"line 1 has no 'status'"),
    "an .npy header claiming 2**40 values": (
        LOADED + b'{"status": "ok", "arrays": ["loss"]}\n',
        HUGE_HEADER.getvalue(),
        r"answers.bin's 'loss' for probe 1 claims 1099511627776 values",
    ),
}

#: Folders nested past Python's recursion limit in the scratch folder, at import.
DEEP = (
    PRELUDE
    + """\
top = os.open(".", os.O_RDONLY)
for _ in range(1100):
    os.mkdir("d")
    os.chdir("d")
os.fchdir(top)
record("child", os.getcwd())
loss_and_grads = reference
"""
)

#: An exception whose __str__ raises, at import or from loss_and_grads.
WEIRD = (
    PRELUDE
    + """\
class Weird(Exception):
    def __str__(self):
        raise RuntimeError("no message")


if {at_import}:
    raise Weird()


def loss_and_grads(params, x, y, **kw):
    raise Weird()
"""
)

#: At import, tries to raise every limit: the soft to the hard one, then the hard one.
RAISES_LIMITS = (
    PRELUDE
    + """\
import resource

raised = []
for name in ("RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_AS"):
    limit = getattr(resource, name)
    soft, hard = resource.getrlimit(limit)
    for wanted in ((hard, hard), (resource.RLIM_INFINITY, resource.RLIM_INFINITY)):
        try:
            resource.setrlimit(limit, wanted)
        except (ValueError, OSError):
            continue
        if resource.getrlimit(limit) != (soft, hard):
            raised.append(name)
if raised:
    raise RuntimeError("raised " + " ".join(sorted(set(raised))))
loss_and_grads = reference
"""
)

#: At import, a grandchild (output closed) sleeps; loss_and_grads records, then sleeps.
SLEEPER = (
    PRELUDE
    + """\
if os.fork() == 0:
    os.setsid()
    quiet()
    record("grandchild")
    time.sleep(60)
    os._exit(0)


def loss_and_grads(params, x, y, **kw):
    record("child", os.getcwd())
    time.sleep(60)
"""
)

#: Writes outside the scratch folder: beside itself, once; or without end, at import.
STRAY = PRELUDE + "open(os.path.join(HERE, 'stray.txt'), 'w').write('x')\n"
STRAY += "loss_and_grads = reference\n"
FLOOD = (
    PRELUDE
    + """\
with open(os.path.join(HERE, "flood.bin"), "wb") as out:
    while True:
        out.seek(0)
        out.write(b"x" * (1 << 20))
"""
)

#: Records when each probe is answered, slowly.
SLOW = (
    PRELUDE
    + """\
record("start", repr(time.time()))


def loss_and_grads(params, x, y, **kw):
    record(f"answer{time.monotonic_ns()}", repr(time.time()))
    time.sleep(0.05)
    return reference(params, x, y, **kw)
"""
)


# ---- helpers --------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def recorded(pids: Path, role: str) -> list[tuple[int, str]]:
    """(pid, text) of what the learner's processes recorded as `role`."""
    found = []
    for path in pids.glob(f"{role}-*"):
        found.append((int(path.name.rsplit("-", 1)[1]), path.read_text()))
    return found


@pytest.fixture
def pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The folder the learner's processes record their pids in; at the end, any of them
    still running is killed (on code that lets them outlive diagnose)."""
    folder = tmp_path / "pids"
    folder.mkdir()
    monkeypatch.setenv("RNN_TEST_PIDS", str(folder))
    yield folder
    for path in folder.iterdir():
        pid = int(path.name.rsplit("-", 1)[1])
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def learner(tmp_path: Path, text: str) -> Path:
    """The learner's file, in a folder of its own."""
    folder = tmp_path / "learner"
    folder.mkdir(exist_ok=True)
    path = folder / "learner.py"
    path.write_text(text)
    return path


@contextmanager
def no_hang(seconds: float = HANG) -> Iterator[None]:
    """TimeoutError, rather than a stalled suite, if the body takes longer."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Done:
    """A finished (or killed) `python -m rnn_torch diagnose`."""

    def __init__(self, code: int | None, out: str, err: str, seconds: float) -> None:
        self.code, self.out, self.err, self.seconds = code, out, err, seconds

    def __repr__(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f} s\n{self.out}\n{self.err}"


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`python -m rnn_torch diagnose ARGS`, its output in files (a pipe could be held open
    by what the learner's file leaves running)."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "rnn_torch", "diagnose", *args],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    return process, out, err


def finish(process: subprocess.Popen[bytes], out: Path, err: Path, begun: float) -> Done:
    """Wait for it, HANG seconds at most (then it is killed: code None)."""
    try:
        code: int | None = process.wait(HANG)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    return Done(code, out.read_text(), err.read_text(), time.monotonic() - begun)


def cli(tmp_path: Path, *args: str) -> Done:
    begun = time.monotonic()
    return finish(*start(tmp_path, *args), begun)


def short(path: Path, timeout: float = 10.0) -> Report:
    with no_hang():
        report = diagnose(path, "rnn", timeout=timeout, **SHORT_API)  # type: ignore[arg-type]
    assert isinstance(report, Report)
    return report


def errors_matching(report: Report, pattern: str) -> list[str]:
    return [line for line in report.errors if re.search(pattern, line)]


# ---- processes ------------------------------------------------------------------------


def test_a_setsid_grandchild_holding_the_output_pipe_does_not_hang_diagnose(
    tmp_path: Path, pids: Path
) -> None:
    """Item 4: the grandchild keeps the child's stdout and stderr open for a minute."""
    done = cli(tmp_path, str(learner(tmp_path, SETSID_HOLDS_THE_PIPE)), *SHORT, "--timeout", "5")
    assert done.code == 0, done
    assert "left 1 process running" in done.out, done
    [(pid, _)] = recorded(pids, "grandchild")
    assert not alive(pid)


def test_a_daemon_is_ended_when_diagnose_returns_and_its_writes_are_reported(
    tmp_path: Path, pids: Path
) -> None:
    """Item 7: setsid, double fork, output closed, limits raised to the hard ones, a file
    written beside the learner's file until the daemon is killed."""
    path = learner(tmp_path, DAEMON)
    report = short(path)
    [(pid, _)] = recorded(pids, "daemon")
    assert not alive(pid)
    stray = path.parent / "stray.bin"
    size = stray.stat().st_size
    time.sleep(0.2)
    assert stray.stat().st_size == size  # nobody writes it any more
    assert report.exit_code == 0, report.text()
    outside = [n for n in report.notes if "wrote outside the folder it ran in" in n]
    assert len(outside) == 1 and str(stray) in outside[0], report.notes


def test_limits_cannot_be_raised(tmp_path: Path, pids: Path) -> None:
    """Item 7: the file tries to raise its soft limits to the hard ones, then the hard ones."""
    report = short(learner(tmp_path, RAISES_LIMITS))
    assert report.exit_code == 0, report.text()


def test_what_a_file_writes_in_all_is_bounded(
    tmp_path: Path, pids: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 7: a file that writes without end (each write within the per-file limit) is
    stopped at the total, long before its time is up."""
    monkeypatch.setattr(sandbox, "WRITE_BYTES", 16_000_000, raising=False)
    begun = time.monotonic()
    report = short(learner(tmp_path, FLOOD), timeout=20)
    assert time.monotonic() - begun < 15
    assert report.exit_code == 2
    assert report.errors == [
        "stopped while loading learner.py: its processes wrote more than 16.0 MB, the most "
        "a diagnosis lets a file write"
    ]


def test_a_file_written_outside_the_scratch_folder_is_reported(tmp_path: Path, pids: Path) -> None:
    report = short(learner(tmp_path, STRAY))
    assert report.exit_code == 0, report.text()
    stray = tmp_path / "learner" / "stray.txt"
    [note] = report.notes  # (others' changes in the current folder may be named too)
    assert note.startswith(f"learner.py wrote outside the folder it ran in: {stray}")


# ---- the job folder -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["status.jsonl", "answers.bin"])
def test_a_fifo_in_the_job_folder_does_not_hang_diagnose(
    name: str, tmp_path: Path, pids: Path
) -> None:
    """Item 4: the parent would block opening or reading it."""
    text = FIFO.replace("{name!r}", repr(name))
    done = cli(tmp_path, str(learner(tmp_path, text)), *SHORT, "--timeout", "5")
    assert done.code == 2, done
    pattern = rf"error: the answers of learner.py cannot be read.*: {name} is a named pipe"
    assert len(re.findall(pattern, done.out)) == 1, done
    assert "Traceback" not in done.out + done.err


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_answer_is_one_line(case: str, tmp_path: Path, pids: Path) -> None:
    """Item 5: what the file writes into the job folder cannot crash the parent."""
    status, answers, pattern = MALFORMED[case]
    text = REPLACE.replace("{status!r}", repr(status)).replace("{answers!r}", repr(answers))
    report = short(learner(tmp_path, text))
    assert report.exit_code != 0, report.text()
    found = errors_matching(report, r"the answers of learner.py cannot be read")
    assert len(found) == 1 and re.search(pattern, found[0]), report.errors
    assert "\n" not in found[0]


def test_folders_nested_past_the_recursion_limit_are_listed_and_removed(
    tmp_path: Path, pids: Path
) -> None:
    """Item 5: 1,100 nested folders in the scratch folder."""
    report = short(learner(tmp_path, DEEP), timeout=30)
    assert report.exit_code == 0, report.text()
    scratch = [n for n in report.notes if "in the folder it ran in" in n]
    assert len(scratch) == 1 and scratch[0].startswith(
        "learner.py wrote files in the folder it ran in (a scratch folder, now deleted): d, d/d"
    )
    [(_, cwd)] = recorded(pids, "child")
    assert not Path(cwd).parent.exists()  # the job folder


@pytest.mark.parametrize("at_import", [False, True])
def test_an_exception_whose_str_raises_is_named_by_its_type(
    at_import: bool, tmp_path: Path, pids: Path
) -> None:
    """Item 5: not 'without an exception', nor the process's end."""
    report = short(learner(tmp_path, WEIRD.replace("{at_import}", str(at_import))))
    assert report.exit_code == 2, report.text()
    assert len(report.errors) == 1, report.errors
    assert "raised Weird" in report.errors[0] and "(learner.py line " in report.errors[0]
    assert "without an exception" not in report.errors[0]


# ---- interrupts -----------------------------------------------------------------------


def wait_for(pids: Path, role: str, seconds: float = HANG) -> list[tuple[int, str]]:
    deadline = time.monotonic() + seconds
    while not (found := recorded(pids, role)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, f"no {role} within {seconds} s"
    time.sleep(0.1)  # its record written in full
    return recorded(pids, role)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_command_line_ends_the_file_and_cleans_up(
    signum: int, code: int, tmp_path: Path, pids: Path
) -> None:
    """Item 6: Ctrl-C or SIGTERM while loss_and_grads sleeps, a grandchild sleeping too."""
    begun = time.monotonic()
    process, out, err = start(tmp_path, str(learner(tmp_path, SLEEPER)), *SHORT)
    [(child, cwd)] = wait_for(pids, "child")
    [(grandchild, _)] = wait_for(pids, "grandchild")
    process.send_signal(signum)
    done = finish(process, out, err, begun)
    assert done.code == code, done
    name = signal.Signals(signum).name
    assert done.err.startswith(f"python -m rnn_torch diagnose: stopped by {name}"), done
    assert done.err.count("\n") == 1 and done.out == "", done
    assert not alive(child) and not alive(grandchild)
    assert not Path(cwd).parent.exists()  # the job folder


def test_the_api_lets_ctrl_c_through_a_function() -> None:
    """Item 6: a function judged in this process, interrupted."""

    def loss_and_grads(params: object, x: object, y: object, **kw: object) -> object:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        diagnose(loss_and_grads, "rnn", **SHORT_API)  # type: ignore[arg-type]


def test_the_api_lets_ctrl_c_through_a_file_and_ends_it(tmp_path: Path, pids: Path) -> None:
    """Item 6: Ctrl-C in this process while the file's loss_and_grads sleeps."""
    path = learner(tmp_path, SLEEPER)
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def press() -> None:
        wait_for(pids, "child")
        signal.pthread_kill(main_thread, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    presser = threading.Thread(target=press, daemon=True)
    try:
        presser.start()
        with pytest.raises(KeyboardInterrupt), no_hang():
            diagnose(path, "rnn", timeout=30, **SHORT_API)  # type: ignore[arg-type]
    finally:
        presser.join(HANG)
        signal.signal(signal.SIGUSR1, previous)
    [(child, cwd)] = recorded(pids, "child")
    [(grandchild, _)] = recorded(pids, "grandchild")
    assert not alive(child) and not alive(grandchild)
    assert not Path(cwd).parent.exists()


# ---- the command line's file and --timeout (item 14) ----------------------------------


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_folder_or_a_fifo_is_refused_for_what_it_is(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "learner.py"
    if kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    with no_hang():
        assert main([str(path), *SHORT]) == 2
    out = capsys.readouterr().out
    what = "a folder" if kind == "folder" else "a named pipe (FIFO)"
    assert f"error: {path} is {what}, not a Python file" in out.splitlines()
    assert "no such file" not in out


@pytest.mark.parametrize("seconds", ["1e20", "1e6", "0.01", "1e-9"])
def test_a_timeout_out_of_range_is_refused(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["learner.py", "--timeout", seconds])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m rnn_torch diagnose: error: argument --timeout: expected seconds from 0.1 "
        f"to 86400, got {seconds!r}\n"
    )
    with pytest.raises(ValueError, match=r"timeout must be from 0\.1 to 86400 seconds"):
        diagnose("learner.py", timeout=float(seconds))


def test_a_short_timeout_is_enforced(tmp_path: Path, pids: Path) -> None:
    """Item 14: 0.5 s of the file's own time, however long diagnose's own work takes
    meanwhile (here 2 s)."""
    probes, _ = probes_for(Settings("rnn", ("mse",), (True, False), ("sigmoid", "tanh")))
    with no_hang():
        run = sandbox.run_file(learner(tmp_path, SLOW), probes, 0.5, lambda: time.sleep(2))
    assert run.timed_out and len(run.errors) == 1, run.errors
    assert run.errors[0].startswith("stopped after 0.5 s: loss_and_grads had answered ")
    [(_, begun)] = recorded(pids, "start")
    answered = [float(text) for _, text in recorded(pids, "answer*")]
    assert answered and max(answered) - float(begun) < 0.5 + 0.4


#: Answers each probe after a short sleep: two of these run side by side.
STEADY = PRELUDE + "def loss_and_grads(params, x, y, **kw):\n"
STEADY += "    time.sleep(0.05)\n    return reference(params, x, y, **kw)\n"


def test_two_diagnoses_side_by_side_leave_each_other_alone(tmp_path: Path, pids: Path) -> None:
    """Both run as this process's children at once: ending the first one's processes must
    not end the second one's child (a subreaper adopts both files' orphans)."""
    reports: dict[str, Report] = {}

    def judge(name: str) -> None:
        path = learner(tmp_path / name, STEADY)
        report = diagnose(path, "rnn", timeout=30, **SHORT_API)  # type: ignore[arg-type]
        assert isinstance(report, Report)
        reports[name] = report

    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    threads = [threading.Thread(target=judge, args=(name,)) for name in ("first", "second")]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    for thread in threads:
        thread.join(HANG)
    assert sorted(reports) == ["first", "second"]
    for report in reports.values():
        assert report.exit_code == 0, report.text()
