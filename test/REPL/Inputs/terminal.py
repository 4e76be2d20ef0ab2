# Drives `nnc repl` on a pseudo-terminal, as a user at a keyboard: Tab
# completion of commands and parameter names, Ctrl-C during training and at
# the prompt, Ctrl-D to leave, and the history file it leaves behind.
import os, pty, sys, time, select, signal
nnc, nn, hist = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(os.environ, NNC_HISTORY=hist, TERM="dumb", NO_COLOR="1")
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(nnc, [nnc, "repl", nn], env)
buf = b""
def give_up(*_):
    sys.stdout.write(buf.decode(errors="replace"))
    os.kill(pid, signal.SIGKILL)
    sys.exit("the session hung; the output so far is above")
signal.signal(signal.SIGALRM, give_up)
signal.alarm(200)
def read_until(pat, timeout=60):
    global buf
    end = time.time() + timeout
    while pat.encode() not in buf:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            sys.stdout.write(buf.decode(errors="replace")); sys.exit("timed out waiting for %r" % pat)
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        buf += data
    i = buf.index(pat.encode()) + len(pat)
    out, buf = buf[:i], buf[i:]
    return out.decode(errors="replace")
def show(s): sys.stdout.write(s.replace("\r", ""))
def type_(keys):
    # Typing ahead of the line editor races with its switch of the terminal
    # to raw mode (a ^D typed before it is lost); a person is slower.
    time.sleep(0.3)
    os.write(fd, keys)
show(read_until("nnc> "))
type_(b":tr\t")           # completes to ":train "
show(read_until(":train "))
type_(b"1\r")
show(read_until("trained in this session"))
show(read_until("nnc> "))
type_(b":sh\tpa\t\r")       # :show params
show(read_until("state tensors"))
show(read_until("nnc> "))
type_(b"mean(h.\t")        # lists h.b h.w, then shows the line again
show(read_until("h.w"))
show(read_until("nnc> mean(h."))
type_(b"w)\r")
show(read_until(": f32[]"))
show(read_until("nnc> "))
type_(b":train 100000\r")
show(read_until("epoch 2/"))
# Ctrl-C while training, at once: the terminal is not the line editor's
# now, and digits_mlp.nn stops early (after ~80 epochs, 0.25 s) if it waits.
os.write(fd, b"\x03")
show(read_until("trained in this session"))
show(read_until("nnc> "))
type_(b"half-typed\x03")    # Ctrl-C at the prompt abandons the line
show(read_until("^C"))
show(read_until("nnc> "))
type_(b":eval val\r")
show(read_until("val loss"))
show(read_until("nnc> "))
type_(b"\x04")              # Ctrl-D leaves
_, status = os.waitpid(pid, 0)
show(buf.decode(errors="replace"))
print("\nexit status", os.waitstatus_to_exitcode(status))
print("history:", open(hist).read().replace("\n", " | "))
