"""Raw protocol child: reads one request and exits with status 3 without answering."""
import sys

sys.stdin.buffer.readline()
sys.stderr.write("crash.py: exiting with status 3\n")
sys.exit(3)
