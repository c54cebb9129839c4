#!/usr/bin/env python3
"""Drives a program through a pseudo-terminal, as a person at a terminal would, and prints what
the terminal shows at the end (a transcript for golden-file tests of the `magritte` console).

    pty-session.py SESSION PROGRAM [ARGS...]

The program runs with TERM=dumb (libedit then only moves the cursor with CR, BS and NL, which
the renderer below understands) and the environment otherwise inherited. SESSION has one step
a line (blank lines and lines starting with '#' are ignored):

    send TEXT      write TEXT to the terminal (after 0.1 s); Python escapes: \\r is Enter, \\t Tab, \\x03
                   Ctrl-C, \\x04 Ctrl-D, \\x1b[A the up arrow
    type TEXT      as send, one character every 0.05 s, as a person types
    expect REGEX   wait (up to 30 s) until the output since the last expect matches REGEX
                   (Python re, searched in the raw output decoded as UTF-8)
    timeout SECONDS  how long the following expects wait (30 s until set)
    sleep SECONDS
    eof            wait for the program to exit; its status is the transcript's last line

Exit status: 0 after the transcript is printed; 2 when an expect times out or the program
exits early (the raw output so far goes to stderr).
"""
import os
import pty
import re
import select
import signal
import sys
import time

TIMEOUT = 30.0


def render(text):
    """The screen of a dumb terminal after `text`: lines, with trailing blanks removed."""
    lines = [[]]
    row = col = 0
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        elif c == "\b":
            col = max(0, col - 1)
        elif c == "\t":
            col = (col // 8 + 1) * 8
        elif c == "\a":
            pass
        elif c == "\x1b":  # skip an escape sequence (none are expected with TERM=dumb)
            if i < len(text) and text[i] == "[":
                i += 1
                while i < len(text) and not ("@" <= text[i] <= "~"):
                    i += 1
            i += 1
        elif c >= " ":
            line = lines[row]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
    return "\n".join("".join(l).rstrip() for l in lines).rstrip("\n") + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    steps = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            verb, _, arg = line.partition(" ")
            steps.append((verb, arg))

    pid, fd = pty.fork()
    if pid == 0:
        # As from a login shell: default signal actions, nothing blocked (a test runner's
        # thread may block SIGINT, and the mask survives exec).
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGALRM):
            signal.signal(s, signal.SIG_DFL)
        os.environ["TERM"] = "dumb"
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
        try:
            os.execv(sys.argv[2], sys.argv[2:])
        finally:
            os._exit(127)

    output = bytearray()
    mark = 0  # where the next expect starts looking
    status = None
    timeout = TIMEOUT

    def pump(timeout):
        nonlocal status
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                output.extend(data)
                return True
            if status is None:
                _, st = os.waitpid(pid, 0)
                status = os.waitstatus_to_exitcode(st)
            return False
        return True

    def fail(why):
        sys.stderr.write(why + "\n--- raw output ---\n" + output.decode("utf-8", "replace") + "\n")
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        sys.exit(2)

    for verb, arg in steps:
        if verb == "type":
            time.sleep(0.1)
            for c in arg.encode("latin-1").decode("unicode_escape"):
                os.write(fd, c.encode("utf-8"))
                time.sleep(0.05)
        elif verb == "timeout":
            timeout = float(arg)
        elif verb == "send":
            # Let the line editor switch the terminal to raw mode after its prompt, or the
            # terminal itself echoes what is typed ahead (as on a real terminal).
            time.sleep(0.1)
            os.write(fd, arg.encode("latin-1").decode("unicode_escape").encode("utf-8"))
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "expect":
            pattern = re.compile(arg)
            deadline = time.time() + timeout
            while True:
                m = pattern.search(output[mark:].decode("utf-8", "replace"))
                if m:
                    mark += len(output[mark:].decode("utf-8", "replace")[: m.end()].encode("utf-8"))
                    break
                if time.time() > deadline:
                    fail("timed out after %g s waiting for /%s/" % (timeout, arg))
                if not pump(0.1) and status is not None:
                    fail("the program exited (status %s) before /%s/" % (status, arg))
        elif verb == "eof":
            deadline = time.time() + TIMEOUT
            while status is None:
                if time.time() > deadline:
                    fail("the program did not exit")
                pump(0.1)
        else:
            fail("unknown step %r" % verb)

    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        fail("the session ended without eof")
    sys.stdout.write(render(output.decode("utf-8", "replace")))
    sys.stdout.write("[exit status %d]\n" % status)


if __name__ == "__main__":
    main()
