"""Drives the `coutil` REPL through a pseudo-terminal, as a person would:
line editing, history kept across sessions, Ctrl-C at the prompt and while
a statement runs, Ctrl-D, an unusable history file, a dumb terminal.
Run by tests/console_repl.rs as `python3 pty_repl.py <coutil>`; exits 1 with
the transcript on the first unmet expectation."""

import os
import pty
import select
import shutil
import sys
import tempfile
import time

COUTIL = sys.argv[1]
TIMEOUT = 20.0


class Session:
    def __init__(self, home, term="xterm"):
        env = dict(os.environ, HOME=home, TERM=term)
        env.pop("COUTIL_INIT", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(COUTIL, [COUTIL], env)
        self.out = b""
        self.mark = 0

    def expect(self, text):
        """Waits until `text` shows after the previous expectation."""
        want = text.encode()
        end = time.time() + TIMEOUT
        while want not in self.out[self.mark:]:
            left = end - time.time()
            if left <= 0 or not self.read(left):
                fail(f"did not see {text!r}", self.out)
        self.mark = self.out.index(want, self.mark) + len(want)

    def read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.2))
        if ready:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            self.out += data
        return True

    def send(self, data):
        os.write(self.fd, data)

    def finish(self):
        """Ctrl-D at the prompt: the REPL ends with status 0."""
        self.expect("> ")
        self.send(b"\x04")
        end = time.time() + TIMEOUT
        while time.time() < end:
            if not self.read(0.2):
                break
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
        else:
            fail("did not end", self.out)
        if not pid:
            _, status = os.waitpid(self.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            fail(f"status {status}", self.out)
        os.close(self.fd)
        return self.out.decode(errors="replace")


def fail(why, out):
    print(f"FAILED: {why}\ntranscript: {out.decode(errors='replace')!r}")
    sys.exit(1)


def main():
    home = tempfile.mkdtemp()
    s = Session(home)
    s.expect("> ")
    s.send(b"x = 4\r")
    s.expect("> ")
    s.send(b"x + 1\r")
    s.expect("5\r\n")
    s.expect("> ")
    # Recall the last line, change its last character.
    s.send(b"\x1b[A")
    s.expect("x + 1")
    s.send(b"\x7f2\r")
    s.expect("6\r\n")
    s.expect("> ")
    # Ctrl-C at the prompt abandons the line, and a statement in progress.
    s.send(b"abandoned = 1")
    s.expect("abandoned = 1")
    s.send(b"\x03")
    s.expect("> ")
    s.send(b"for i = 1, 2 do\r")
    s.expect(">> ")
    s.send(b"\x03")
    s.expect("> ")
    s.send(b"print(abandoned, i)\r")
    s.expect("nil\tnil\r\n")
    s.expect("> ")
    # Ctrl-C stops a statement busy in Lua code, and one waiting.
    s.send(b"print('busy') while true do end\r")
    s.expect("busy\r\n")
    time.sleep(0.2)
    s.send(b"\x03")
    s.expect("interrupted!\r\nstack traceback:\r\n")
    s.expect("[C]: in ?\r\n")
    s.expect("> ")
    s.send(b"print('waiting') system.suspend(60)\r")
    s.expect("waiting\r\n")
    time.sleep(0.2)
    s.send(b"\x03")
    s.expect("stdin:1: interrupted!\r\nstack traceback:\r\n")
    s.expect("[C]: in ?\r\n")
    s.expect("> ")
    s.send(b"print('still' .. ' here')\r")
    s.expect("still here\r\n")
    s.finish()
    with open(os.path.join(home, ".coutil_history")) as f:
        history = [l for l in f.read().split("\n") if l and not l.startswith("#")]
    if history[:3] != ["x = 4", "x + 1", "x + 2"] or "abandoned = 1" in history:
        fail(f"history {history!r}", b"")
    # A new session finds the history.
    s = Session(home)
    s.expect("> ")
    s.send(b"\x1b[A\r")
    s.expect("still here\r\n")
    s.finish()
    # A history file that cannot be used: one line, the REPL works.
    bad = tempfile.mkdtemp()
    os.mkdir(os.path.join(bad, ".coutil_history"))
    s = Session(bad)
    s.expect("history not kept in")
    s.expect("illegal operation on a directory")
    s.expect("> ")
    s.send(b"1 + 1\r")
    s.expect("2\r\n")
    s.finish()
    # A terminal without editing capabilities: plain lines.
    s = Session(home, term="dumb")
    s.expect("> ")
    s.send(b"2 + 2\r")
    s.expect("4\r\n")
    s.finish()
    shutil.rmtree(home)
    shutil.rmtree(bad)
    print("pty REPL: ok")


main()
