"""Raw protocol child: reads one request and never answers."""
import sys
import time

sys.stdin.buffer.readline()
sys.stderr.write("hang.py: sleeping forever\n")
sys.stderr.flush()
while True:
    time.sleep(3600)
