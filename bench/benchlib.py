"""
benchlib.py
    What bench/accuracy.py and bench/perf.py share: progress lines, SQL
    literals, and the private PostgreSQL cluster of tools/pgcluster.sh with a
    one-off psql runner.  Standard library only, so that both scripts import
    it before (or without) torch.
"""
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGCLUSTER = os.path.join(REPO, "tools", "pgcluster.sh")


def log(msg):
    """A time-stamped progress line on stderr."""
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def sql_literal(s):
    """s as a single-quoted SQL literal."""
    return "'" + s.replace("'", "''") + "'"


def start_cluster(pgroot, drop_env=()):
    """Start (or reuse) the private cluster in pgroot; return the environment
    for psql (PGHOST, PGPORT, ... from pgcluster.sh), without PGOPTIONS and
    without the variables named in drop_env (settings meant for this process,
    not for the server)."""
    env = dict(os.environ)
    env["TEXTCLF_PGROOT"] = pgroot
    for k in drop_env:
        env.pop(k, None)
    out = subprocess.run([PGCLUSTER, "start"], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    env.pop("PGOPTIONS", None)
    return env


def stop_cluster(env):
    """Stop the cluster of env (its data stays in its pgroot)."""
    subprocess.run([PGCLUSTER, "stop"], env=env, check=False)


def run_psql(env, script, db):
    """Run script in a one-off psql session (ON_ERROR_STOP, warnings and
    above only); return (returncode, stdout unaligned tuples-only, stderr)."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", db],
                       input="SET client_min_messages = warning;\n" + script,
                       env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr


def psql_error(stderr, script):
    """The exception for a failed psql run."""
    return RuntimeError("psql failed:\n%s\n--- script ---\n%s"
                        % (stderr, script[:2000]))
