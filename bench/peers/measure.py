"""Runs a command as a child, forwards SIGTERM/SIGINT to it, and when it exits writes its CPU
time and peak RSS (from wait4's rusage) to OUT: `cpu_s=U+S peak_rss_mib=M`. The child's pid
goes to OUT.pid (the kill -9 row kills the child itself, not this wrapper).
usage: measure.py OUT -- COMMAND..."""
import os
import signal
import subprocess
import sys

out = sys.argv[1]
assert sys.argv[2] == "--"
child = subprocess.Popen(sys.argv[3:])
with open(out + ".pid", "w") as f:
    f.write(str(child.pid))
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, _f: child.send_signal(s))
while True:
    try:
        _, status, usage = os.wait4(child.pid, 0)
        break
    except InterruptedError:
        continue
with open(out, "w") as f:
    f.write(f"cpu_s={usage.ru_utime + usage.ru_stime:.2f} peak_rss_mib={usage.ru_maxrss / 1024:.1f}\n")
