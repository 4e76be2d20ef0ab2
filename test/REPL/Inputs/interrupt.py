# Drives `nnc repl` through a pipe: starts a long training run, waits for
# its second epoch line, sends SIGINT (a real signal, as Ctrl-C does), then
# enters more commands. Prints the whole session and the exit status.
import signal
import subprocess
import sys

nnc, decls = sys.argv[1], sys.argv[2]
signal.alarm(300)  # a REPL that ignores the signal fails the test, not hangs it
p = subprocess.Popen([nnc, "repl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, bufsize=1)
p.stdin.write(open(decls).read() + ":train 100000\n")
p.stdin.flush()
while True:
    line = p.stdout.readline()
    if not line:
        sys.exit("the REPL ended before training started")
    print(line, end="")
    if line.startswith("epoch 2/"):
        break
p.send_signal(signal.SIGINT)
out, _ = p.communicate(":eval val\n:show\n:train 1\n:quit\n")
print(out, end="")
print("exit status", p.returncode)
