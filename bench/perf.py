#!/usr/bin/python3
"""
perf.py
    Side-by-side performance benchmark: textclf in SQL against the same model
    in PyTorch 1.13 (Debian's python3-torch), on the same IMDB rows, the same
    token ids and the same thread counts, in one run.

    /usr/bin/python3 bench/perf.py            # full run, writes docs/performance.md
                                              # and docs/img/performance.svg
    /usr/bin/python3 bench/perf.py --quick    # smoke run (~1 min), writes no docs
    /usr/bin/python3 bench/perf.py --from-json /tmp/textclf_perf.json --write-docs
                                              # redo report, docs and chart of a run

What one run measures (each figure is the median of --repeats runs, 5 by
default; the order of the competing measurements is interleaved so that a
change of machine load hits both sides alike):

  training   train_classifier() on a fixed subset of --train-rows IMDB training
             reviews (5,000 by default: a full 25,000-row epoch per measurement
             would make the run last an hour), reference settings (vocab 10000,
             max_len 100, E 16, H 128, batch 32, Adam), 1 epoch, patience 0,
             validation_fraction 0, {"threads": n} for n = 1, 2.  Samples/s =
             rows / the epoch's seconds in textclf.training_log, which leaves
             out the two reading passes (vocabulary, token ids).  Each training
             runs in a fresh backend.  PyTorch: Embedding -> LSTM over packed
             sequences -> Linear, BCE-with-logits, torch.optim.Adam (eps 1e-7),
             batch 32, one shuffled epoch over the same token ids (from
             tokenize()), torch.set_num_threads(n) with
             OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS=n (Debian's
             torch multiplies in OpenBLAS, whose threads set_num_threads does
             not bound), in a child process per thread count.
  scoring    SELECT count(f(...)) FROM imdb_test (--test-rows rows, 25,000 by
             default) for f = predict('perf', text), predict_proba(...),
             tokenize(...), and two floors: length(text) (a built-in C
             function that detoasts the text and walks its bytes once: the
             cost of fetching the row, detoasting and calling a function) and
             md5(text).  count() keeps the result off the wire; the same
             aggregate is in every query, so it cancels out.  Serial plans
             (max_parallel_workers_per_gather = 0).  PyTorch: the same model
             in eval mode under inference_mode, batch 1 (one row per call,
             no padding) and batch 256 (packed), on the same test token ids, one
             thread.
  parallel   the predict query with max_parallel_workers_per_gather = 2,
             parallel_setup_cost = parallel_tuple_cost = 0,
             min_parallel_table_scan_size = 0 (EXPLAIN must show Gather with
             2 workers planned and launched) against the same query serial.
  first call predict() as the first statement of a fresh backend, and the
             call after it (shown, not a target).
  memory     peak RssAnon (/proc/<pid>/status, sampled every 0.1 s) of the
             backend while training and while scoring, and of the PyTorch
             child processes; the number of decoded model copies in the scoring
             backend (pg_backend_memory_contexts named 'textclf model') after
             predict, predict_proba and tokenize have all run.
  CPU time   beside each wall-clock figure, the rate per CPU second of the
             measured process (utime + stime from /proc/<pid>/stat), which
             is steadier on a loaded machine but shows no gain from threads.

Targets (PASS/FAIL): training samples/s at 1 thread >= 3x PyTorch; at 2
threads >= 1.6x textclf's 1 thread; predict rows/s >= 10x PyTorch batch 1
and >= 1x PyTorch batch 256; overhead outside the math
(t_tokenize - t_floor) / t_predict < 20%; parallel (2 workers) >= 1.7x
serial; one decoded model per backend.  The exit status is 1 when a target
fails.  The load average is sampled during the run and printed with the
figures: on a shared 2-core machine wall-clock figures drop with load.

The cluster is private (tools/pgcluster.sh, --pgroot, default
/tmp/textclf-perf-pg), the database textclf_perf is recreated each run.
Raw results go to --json (default /tmp/textclf_perf.json).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (REPO, log, psql_error, run_psql, sql_literal,
                      start_cluster, stop_cluster)

DOC_PATH = os.path.join(REPO, "docs", "performance.md")
PLOT_PATH = os.path.join(REPO, "docs", "img", "performance.svg")
BEGIN_MARK = "<!-- BEGIN perf-table (written by bench/perf.py; do not edit) -->"
END_MARK = "<!-- END perf-table -->"

VOCAB_SIZE = 10000
MAX_LEN = 100
EMBED_DIM = 16
HIDDEN = 128
BATCH = 32
MODEL = "perf"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# PyTorch child: glibc keeps freed blocks in the heap (see accuracy.py);
# this only makes PyTorch faster, it changes no result.
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE",
             "MALLOC_MMAP_THRESHOLD_": "1073741824",
             "MALLOC_TRIM_THRESHOLD_": "1073741824",
             "MALLOC_TOP_PAD_": "268435456"}


def median(v):
    return statistics.median(v) if v else float("nan")


# ---------------------------------------------------------------------------
# process probes
# ---------------------------------------------------------------------------

def rss_anon_kb(pid):
    """RssAnon of pid in kB (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """utime + stime of pid (all its threads) in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return float("nan")


class RssWatcher:
    """Samples RssAnon of a process every `interval` seconds; keeps the peak."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.start_kb = rss_anon_kb(pid)
        self.peak_kb = self.start_kb
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak_kb = max(self.peak_kb, rss_anon_kb(self.pid))

    def stop(self):
        self._stop.set()
        self._t.join()
        self.peak_kb = max(self.peak_kb, rss_anon_kb(self.pid))
        return self.peak_kb


def autogroup_nice(pid, value=None):
    """The nice value of pid's scheduler autogroup; set it when value is
    given.  None when autogroups are off or it cannot be read or set."""
    path = "/proc/%d/autogroup" % pid
    try:
        if value is not None:
            with open(path, "w") as f:
                f.write("%d\n" % value)
        with open(path) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def set_priority(pid, nice):
    """Run pid (and what it forks later) at `nice`: the process's own nice
    value and, with scheduler autogroups on, its autogroup's, since nice
    alone only ranks processes within one autogroup (one session).  Returns
    the autogroup's previous nice value (None if unchanged)."""
    if pid == os.getpid():
        if nice != os.nice(0):
            os.nice(nice - os.nice(0))
    else:
        subprocess.run(["renice", "-n", str(nice), "-p", str(pid)], check=True,
                       stdout=subprocess.DEVNULL)
    old = autogroup_nice(pid)
    if old is None or old == nice:
        return None
    autogroup_nice(pid, nice)
    return old


class LoadLog:
    """The 1-minute load average, sampled at each measurement."""

    def __init__(self):
        self.samples = []

    def sample(self):
        self.samples.append(os.getloadavg()[0])

    def summary(self):
        s = self.samples or [os.getloadavg()[0]]
        return "%.2f (min %.2f, max %.2f)" % (median(s), min(s), max(s))


LOAD = LoadLog()


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

def psql(env, script, db):
    """Run script in a one-off psql; return stdout (unaligned, tuples only)."""
    rc, out, err = run_psql(env, script, db)
    if rc != 0:
        raise psql_error(err, script)
    return out


class Session:
    """One psql process = one backend, kept open; queries one at a time."""

    MARK = "__TEXTCLF_PERF_DONE__"

    def __init__(self, env, db):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v",
                                   "ON_ERROR_STOP=1", "-d", db],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1,
                                  env=env)
        self.err = []
        self._t = threading.Thread(target=self._read_err, daemon=True)
        self._t.start()
        self.query("SET client_min_messages = warning")
        self.pid = int(self.query("SELECT pg_backend_pid()")[0])

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line)

    def query(self, sql):
        """Lines of output of one statement."""
        self.p.stdin.write(sql.strip().rstrip(";") + ";\n\\echo " + self.MARK + "\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                self.p.wait()
                time.sleep(0.2)
                raise RuntimeError("psql failed on:\n%s\n%s" % (sql, "".join(self.err[-20:])))
            line = line.rstrip("\n")
            if line == self.MARK:
                return lines
            lines.append(line)

    def timed(self, sql):
        """(wall seconds, backend CPU seconds) of one statement."""
        LOAD.sample()
        c0 = cpu_seconds(self.pid)
        t0 = time.perf_counter()
        self.query(sql)
        t1 = time.perf_counter()
        return t1 - t0, cpu_seconds(self.pid) - c0

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait()


def load_tables(env, db, ddir, train_rows, test_rows):
    """imdb_test (test_rows, all when 0) and perf_train (a fixed pseudo-random
    subset of train_rows IMDB training reviews)."""
    for split in ("train", "test"):
        path = os.path.join(ddir, "imdb_%s.csv.gz" % split)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        script = ("DROP TABLE IF EXISTS imdb_%s;\n"
                  "CREATE TABLE imdb_%s (rid bigserial PRIMARY KEY, text text, "
                  "label text, rating text, id text);\n"
                  "\\copy imdb_%s(text,label,rating,id) FROM PROGRAM %s CSV HEADER\n"
                  % (split, split, split, sql_literal('gzip -dc "%s"' % path)))
        psql(env, script, db)
    script = ("CREATE TABLE perf_train AS SELECT rid, text, label FROM imdb_train "
              "ORDER BY md5(rid::text) LIMIT %d;\n" % train_rows)
    if test_rows:
        script += ("DELETE FROM imdb_test WHERE rid NOT IN (SELECT rid FROM imdb_test "
                   "ORDER BY md5(rid::text) LIMIT %d);\n" % test_rows)
    script += ("VACUUM ANALYZE imdb_test; VACUUM ANALYZE perf_train;\n"
               "SELECT count(*) FROM perf_train; SELECT count(*) FROM imdb_test;\n"
               "SELECT pg_size_pretty(pg_table_size('imdb_test'));\n")
    out = psql(env, script, db).split()
    return int(out[0]), int(out[1]), " ".join(out[2:])


# ---------------------------------------------------------------------------
# textclf measurements
# ---------------------------------------------------------------------------

def textclf_train(env, db, threads, seed):
    """Train one version of MODEL in a fresh backend; a dict of figures."""
    opts = {"epochs": 1, "patience": 0, "validation_fraction": 0, "dropout": 0,
            "ema_momentum": 0,
            "vocab_size": VOCAB_SIZE, "max_len": MAX_LEN,
            "embedding_dim": EMBED_DIM, "hidden_size": HIDDEN,
            "batch_size": BATCH, "seed": seed, "threads": threads}
    s = Session(env, db)
    try:
        w = RssWatcher(s.pid)
        wall, cpu = s.timed("SELECT 1")      # warm the session
        LOAD.sample()
        c0 = cpu_seconds(s.pid)
        t0 = time.perf_counter()
        row = json.loads(s.query(
            "SELECT row_to_json(r) FROM train_classifier(%s, 'perf_train', "
            "'text', 'label', %s::jsonb) r"
            % (sql_literal(MODEL), sql_literal(json.dumps(opts))))[0])
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(s.pid) - c0
        peak = w.stop()
        epoch_s = float(s.query(
            "SELECT seconds FROM textclf.training_log WHERE model_name = %s "
            "AND version = %d AND epoch = 1" % (sql_literal(MODEL), row["version"]))[0])
    finally:
        s.close()
    n = row["train_rows"]
    return {"version": row["version"], "rows": n, "epoch_seconds": epoch_s,
            "samples_per_s": n / epoch_s, "call_seconds": wall,
            "call_cpu_seconds": cpu, "start_rss_kb": w.start_kb,
            "peak_rss_kb": peak}


SCORING = [
    ("floor", "length(text)"),
    ("md5", "md5(text)"),
    ("tokenize", "tokenize('%s', text)" % MODEL),
    ("predict", "predict('%s', text)" % MODEL),
    ("predict_proba", "predict_proba('%s', text)" % MODEL),
]


def scoring_round(env, db, repeats, torch_worker, b1_rows):
    """Serial scoring queries in one backend, interleaved with PyTorch's
    batch-1 and batch-256 scoring of the same rows; (figures by name,
    memory of the backend)."""
    s = Session(env, db)
    names = [k for k, _ in SCORING] + ["torch_b1", "torch_b256"]
    res = {k: {"wall": [], "cpu": []} for k in names}
    try:
        s.query("SET max_parallel_workers_per_gather = 0")
        w = RssWatcher(s.pid)
        for name, expr in SCORING:            # warm-up: cache, buffers
            s.query("SELECT count(%s) FROM imdb_test" % expr)
        for r in range(repeats):
            order = [k for k, _ in SCORING]
            order = order[:3] + ["torch_b1", "torch_b256"] + order[3:]
            if r % 2:
                order.reverse()
            for name in order:
                if name == "torch_b1":
                    x = torch_worker.run(op="b1", rows=b1_rows)
                    wall, cpu, n = x["wall"], x["cpu"], x["n"]
                elif name == "torch_b256":
                    x = torch_worker.run(op="b256")
                    wall, cpu, n = x["wall"], x["cpu"], x["n"]
                else:
                    wall, cpu = s.timed("SELECT count(%s) FROM imdb_test"
                                        % dict(SCORING)[name])
                    n = None
                res[name]["wall"].append(wall)
                res[name]["cpu"].append(cpu)
                res[name]["n"] = n
                log("  %-13s %.3f s (cpu %.2f s), load %.2f"
                    % (name, wall, cpu, LOAD.samples[-1]))
        peak = w.stop()
        copies = s.query("SELECT count(*), coalesce(sum(total_bytes), 0) "
                         "FROM pg_backend_memory_contexts "
                         "WHERE name = 'textclf model'")[0].split("|")
    finally:
        s.close()
    return res, {"start_rss_kb": w.start_kb, "peak_rss_kb": peak,
                 "model_copies": int(copies[0]), "model_bytes": int(copies[1])}


def textclf_parallel(env, db, repeats):
    """predict over imdb_test serial and with 2 workers, interleaved."""
    q = "SELECT count(predict('%s', text)) FROM imdb_test" % MODEL
    par = ["SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0",
           "SET min_parallel_table_scan_size = 0",
           "SET max_parallel_workers_per_gather = 2"]
    s = Session(env, db)
    out = {"serial": [], "parallel": []}
    try:
        for x in par:
            s.query(x)
        plan = "\n".join(s.query("EXPLAIN (COSTS OFF) " + q))
        analyze = "\n".join(s.query("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + q))
        planned = re.search(r"Workers Planned: (\d+)", analyze)
        launched = re.search(r"Workers Launched: (\d+)", analyze)
        for r in range(repeats):
            for mode in (("serial", "parallel") if r % 2 == 0 else ("parallel", "serial")):
                s.query("SET max_parallel_workers_per_gather = %d"
                        % (0 if mode == "serial" else 2))
                wall, _ = s.timed(q)
                out[mode].append(wall)
                log("  %-8s %.3f s, load %.2f" % (mode, wall, LOAD.samples[-1]))
    finally:
        s.close()
    out["gather"] = "Gather" in plan
    out["planned"] = int(planned.group(1)) if planned else 0
    out["launched"] = int(launched.group(1)) if launched else 0
    out["plan"] = analyze
    return out


def textclf_first_call(env, db, repeats):
    """predict() as the first statement of a new backend (the library is
    loaded, the model read from the registry, checked and decoded), then a
    second call in the same backend; seconds of each, per fresh backend."""
    out = {"first": [], "second": []}
    for r in range(repeats):
        s = Session(env, db)
        try:
            out["first"].append(s.timed("SELECT predict('%s', 'a first call')" % MODEL)[0])
            out["second"].append(s.timed("SELECT predict('%s', 'a second call')" % MODEL)[0])
        finally:
            s.close()
        log("  first call %.1f ms, second %.1f ms, load %.2f"
            % (1000 * out["first"][-1], 1000 * out["second"][-1], LOAD.samples[-1]))
    return out


def fetch_token_ids(env, db, table, model):
    """[label, [token, ...]] of a table's rows in rid order, from tokenize()."""
    out = psql(env, "SELECT json_build_array(label, tokenize(%s, text)) FROM %s "
               "ORDER BY rid;\n" % (sql_literal(model), table), db)
    return [json.loads(line) for line in out.split("\n") if line]


# ---------------------------------------------------------------------------
# PyTorch (child process: --torch-worker DATA THREADS)
# ---------------------------------------------------------------------------

def torch_worker(data_path, threads):
    """A PyTorch worker: loads the token ids, then answers one JSON command
    per stdin line with one JSON line on stdout:
      {"op": "train", "threads": n, "seed": s}  one timed epoch, a fresh model
      {"op": "b1", "rows": n}                  batch-1 scoring of the first n rows
      {"op": "b256"}                           batch-256 scoring of all rows
    """
    import numpy as np
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    data = np.load(data_path)
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB_SIZE, EMBED_DIM)
            self.lstm = nn.LSTM(EMBED_DIM, HIDDEN, batch_first=True)
            self.fc = nn.Linear(HIDDEN, 1)

        def forward(self, ids, lens):
            """logits (B,1) of padded ids (B,T) with lengths lens (B)."""
            packed = pack_padded_sequence(self.emb(ids), lens, batch_first=True,
                                          enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)
            return self.fc(h_n[0])

        def one(self, ids):
            """logit (1,1) of one unpadded row ids (1,T)."""
            return self.fc(self.lstm(self.emb(ids))[1][0][0])

    def make_net(seed):
        torch.manual_seed(seed)
        net = Net()
        with torch.no_grad():
            net.emb.weight.uniform_(-0.05, 0.05)
            nn.init.xavier_uniform_(net.lstm.weight_ih_l0)
            nn.init.orthogonal_(net.lstm.weight_hh_l0)
            net.lstm.bias_ih_l0.zero_()
            net.lstm.bias_ih_l0[HIDDEN:2 * HIDDEN] = 1.0
            net.lstm.bias_hh_l0.zero_()
            nn.init.xavier_uniform_(net.fc.weight)
            net.fc.bias.zero_()
        net.lstm.bias_hh_l0.requires_grad_(False)   # one bias, as textclf
        return net

    def batch(ids, lens, idx):
        ln = lens[idx]
        T = int(ln.max())
        return torch.from_numpy(ids[idx, :T]), torch.from_numpy(ln)

    tr_ids, tr_lens = data["train_ids"], data["train_lens"]
    tr_y = torch.from_numpy(data["train_y"].astype(np.float32))
    te_ids, te_lens = data["test_ids"], data["test_lens"]
    lossf = nn.BCEWithLogitsLoss()
    scorer = make_net(1).eval()

    def epoch(net, opt, perm, limit):
        for b in range(0, min(len(perm), limit), BATCH):
            idx = perm[b:b + BATCH]
            x, ln = batch(tr_ids, tr_lens, idx)
            loss = lossf(net(x, ln).squeeze(1), tr_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def new_training(seed):
        net = make_net(seed)
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad],
                               lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        return net, opt, np.random.RandomState(seed).permutation(len(tr_lens))

    def timed(fn):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0, time.process_time() - c0

    # warm-up (not timed): a few training batches, a few rows of each scoring
    net, opt, perm = new_training(99)
    epoch(net, opt, perm, 4 * BATCH)
    with torch.inference_mode():
        for i in range(20):
            torch.sigmoid(scorer.one(torch.from_numpy(te_ids[i:i + 1, :te_lens[i]])))
        torch.sigmoid(scorer(*batch(te_ids, te_lens, np.arange(min(256, len(te_lens))))))
    print(json.dumps({"ready": True, "torch_version": torch.__version__,
                      "rss_ready_kb": rss_anon_kb(os.getpid())}), flush=True)

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "train":
            torch.set_num_threads(cmd["threads"])
            net, opt, perm = new_training(cmd["seed"])
            N = len(perm)
            wall, cpu = timed(lambda: epoch(net, opt, perm, N))
        elif cmd["op"] == "b1":
            N = min(len(te_lens), cmd["rows"])

            def run():
                with torch.inference_mode():
                    for i in range(N):
                        x = torch.from_numpy(te_ids[i:i + 1, :te_lens[i]])
                        torch.sigmoid(scorer.one(x))
            torch.set_num_threads(1)
            wall, cpu = timed(run)
        elif cmd["op"] == "b256":
            N = len(te_lens)

            def run():
                with torch.inference_mode():
                    for b in range(0, N, 256):
                        torch.sigmoid(scorer(*batch(te_ids, te_lens,
                                                    np.arange(b, min(N, b + 256)))))
            torch.set_num_threads(1)
            wall, cpu = timed(run)
        else:
            break
        print(json.dumps({"n": N, "wall": wall, "cpu": cpu,
                          "rate": N / wall, "cpu_rate": N / cpu}), flush=True)


class TorchWorker:
    """A live `--torch-worker` child with its RssAnon watcher."""

    def __init__(self, data_path, threads=1):
        env = dict(os.environ)
        env.update(TORCH_ENV)
        # Debian's torch does its products in OpenBLAS (pthreads), whose own
        # threads torch.set_num_threads does not bound: bound them here
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                   "--torch-worker", data_path, str(threads)],
                                  env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.watch = RssWatcher(self.p.pid)
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch worker died")
        return json.loads(line)

    def run(self, **cmd):
        """One command; its answer (n, wall, cpu, rate, cpu_rate)."""
        LOAD.sample()
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        """Stop the child; its peak RssAnon in kB."""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait()
        return self.watch.stop()


def save_token_ids(path, train_tok, test_tok):
    """Write the token ids of both splits to an .npz for the children."""
    import numpy as np
    wid = {}

    def ids_of(toks):
        out = []
        for t in toks or []:
            if t not in wid:
                wid[t] = 1 + len(wid) % (VOCAB_SIZE - 1)
            out.append(wid[t])
        return out or [1]     # no empty sequence: PyTorch cannot pack one

    def encode(rows, labels):
        seqs = [ids_of(r[1]) for r in rows]
        a = np.zeros((len(seqs), MAX_LEN), dtype=np.int64)
        ln = np.zeros(len(seqs), dtype=np.int64)
        for i, s in enumerate(seqs):
            s = s[-MAX_LEN:]
            a[i, :len(s)] = s
            ln[i] = len(s)
        y = np.array([labels.index(r[0]) for r in rows], dtype=np.int64)
        return a, ln, y

    labels = sorted({r[0] for r in train_tok})
    tr = encode(train_tok, labels)
    te = encode(test_tok, labels)
    np.savez(path, train_ids=tr[0], train_lens=tr[1], train_y=tr[2],
             test_ids=te[0], test_lens=te[1])
    return float(tr[1].mean()), float(te[1].mean())


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def figures(R, best=False):
    """The medians and ratios the report and the chart show; with best, the
    same from the fastest run of each measurement instead of the median."""
    tr, to, sc, pa = R["train"], R["torch"], R["scoring"], R["parallel"]
    n = R["test_rows"]
    rate = max if best else median      # of rates: higher is faster
    secs = min if best else median      # of times: lower is faster
    F = {}
    for th in ("1", "2"):
        F["tc_train" + th] = rate([x["samples_per_s"] for x in tr[th]])
        F["tc_train_cpu" + th] = rate([x["rows"] / x["call_cpu_seconds"] for x in tr[th]])
        F["pt_train" + th] = rate([x["rate"] for x in to["train" + th]])
        F["pt_train_cpu" + th] = rate([x["cpu_rate"] for x in to["train" + th]])
    for k in ("floor", "md5", "tokenize", "predict", "predict_proba",
              "torch_b1", "torch_b256"):
        rows = sc[k]["n"] or n
        F[k] = rows / secs(sc[k]["wall"])
        F[k + "_cpu"] = rows / secs(sc[k]["cpu"])
    F["overhead"] = ((secs(sc["tokenize"]["wall"]) - secs(sc["floor"]["wall"]))
                     / secs(sc["predict"]["wall"]))
    F["overhead_cpu"] = ((secs(sc["tokenize"]["cpu"]) - secs(sc["floor"]["cpu"]))
                         / secs(sc["predict"]["cpu"]))
    F["serial"] = n / secs(pa["serial"])
    F["parallel"] = n / secs(pa["parallel"])
    F["speedup"] = secs(pa["serial"]) / secs(pa["parallel"])
    F["tc_train_peak"] = max(x["peak_rss_kb"] for x in tr["1"] + tr["2"])
    F["tc_train_start"] = median([x["start_rss_kb"] for x in tr["1"] + tr["2"]])
    F["pt_train_peak"] = to["train_peak_rss_kb"]
    F["pt_infer_peak"] = to["infer_peak_rss_kb"]
    return F


def build_report(R, args):
    """(markdown table text, list of target tuples)."""
    F = figures(R)
    pa = R["parallel"]
    mem = R["scoring_mem"]
    n_test = R["test_rows"]

    def mb(kb):
        return "%.0f MB" % (kb / 1024.0)

    rows = []

    def row(what, tc, pt, ratio=None, note=""):
        rows.append("| %s | %s | %s | %s | %s |" % (
            what, tc, pt, ("%.2fx" % ratio) if ratio is not None else "", note))

    for th in ("1", "2"):
        row("training, %s thread%s" % (th, "s" if th == "2" else ""),
            "%.0f samples/s" % F["tc_train" + th],
            "%.0f samples/s" % F["pt_train" + th],
            F["tc_train" + th] / F["pt_train" + th],
            "per CPU second: %.0f (whole call, with the reading passes) vs %.0f" % (F["tc_train_cpu" + th], F["pt_train_cpu" + th])
            + ("" if th == "1" else "; 2 vs 1 thread: textclf %.2fx, PyTorch %.2fx"
               % (F["tc_train2"] / F["tc_train1"], F["pt_train2"] / F["pt_train1"])))
    row("predict() vs batch 1", "%.0f rows/s" % F["predict"],
        "%.0f rows/s" % F["torch_b1"], F["predict"] / F["torch_b1"],
        "per CPU second: %.0f vs %.0f (%.1fx)" % (F["predict_cpu"], F["torch_b1_cpu"],
                                                  F["predict_cpu"] / F["torch_b1_cpu"]))
    row("predict() vs batch 256", "%.0f rows/s" % F["predict"],
        "%.0f rows/s" % F["torch_b256"], F["predict"] / F["torch_b256"],
        "per CPU second: %.0f vs %.0f (%.2fx)" % (F["predict_cpu"], F["torch_b256_cpu"],
                                                  F["predict_cpu"] / F["torch_b256_cpu"]))
    row("predict_proba() vs batch 256", "%.0f rows/s" % F["predict_proba"],
        "%.0f rows/s" % F["torch_b256"], F["predict_proba"] / F["torch_b256"],
        "per CPU second: %.0f" % F["predict_proba_cpu"])
    row("predict(), 2 parallel workers", "%.0f rows/s" % F["parallel"], "", None,
        "%.2fx serial (%.0f rows/s, same run); Gather: %d workers planned, %d launched"
        % (F["speedup"], F["serial"], pa["planned"], pa["launched"]))
    if "first_call" in R:                   # not in the JSON of older runs
        fc = R["first_call"]
        row("first predict() in a new backend", "%.1f ms" % (1000 * median(fc["first"])),
            "", None, "loading the library, reading the model from the registry, "
            "checking and decoding it; the next call: %.2f ms. Every parallel worker "
            "pays it once" % (1000 * median(fc["second"])))
    row("tokenize()", "%.0f rows/s" % F["tokenize"], "", None,
        "tokenizing + vocabulary lookup + building a text[]")
    row("floor: length(text)", "%.0f rows/s" % F["floor"], "", None,
        "scan + detoast + call + one pass over the bytes")
    row("md5(text)", "%.0f rows/s" % F["md5"], "", None, "for scale")
    row("peak RssAnon, training", mb(F["tc_train_peak"]), mb(F["pt_train_peak"]), None,
        "backend at start: %s; PyTorch: the whole worker process (%s after import, "
        "data loaded and warm-up)" % (mb(F["tc_train_start"]),
                                      mb(R["torch"].get("ready_rss_kb", 0))))
    row("peak RssAnon, scoring", mb(mem["peak_rss_kb"]), mb(F["pt_infer_peak"]), None,
        "backend at start: %s; %d decoded model in the backend (%.1f MB)"
        % (mb(mem["start_rss_kb"]), mem["model_copies"], mem["model_bytes"] / 1048576.0))

    # each target: name, its figure from a set of figures, format, the same
    # per CPU second (or None), format, and the bound the figure must meet
    launched = pa["launched"] == 2
    spec = [
        ("training, 1 thread >= 3x PyTorch",
         lambda f: f["tc_train1"] / f["pt_train1"], "%.2fx",
         lambda f: f["tc_train_cpu1"] / f["pt_train_cpu1"], "(%.2fx)", lambda v: v >= 3.0),
        ("training, 2 threads >= 1.6x textclf's 1 thread",
         lambda f: f["tc_train2"] / f["tc_train1"], "%.2fx", None, "", lambda v: v >= 1.6),
        ("predict >= 10x PyTorch batch 1",
         lambda f: f["predict"] / f["torch_b1"], "%.1fx",
         lambda f: f["predict_cpu"] / f["torch_b1_cpu"], "(%.2fx)", lambda v: v >= 10.0),
        ("predict >= 1x PyTorch batch 256",
         lambda f: f["predict"] / f["torch_b256"], "%.2fx",
         lambda f: f["predict_cpu"] / f["torch_b256_cpu"], "(%.2fx)", lambda v: v >= 1.0),
        ("overhead outside the math < 20%",
         lambda f: 100 * f["overhead"], "%.1f%%",
         lambda f: 100 * f["overhead_cpu"], "(%.1f%%)", lambda v: v < 20.0),
        ("parallel, 2 workers >= 1.7x serial",
         lambda f: f["speedup"], "%.2fx", None, "", lambda v: v >= 1.7 and launched),
        ("one decoded model per backend",
         lambda f: mem["model_copies"], "%d", None, "", lambda v: v == 1),
    ]
    B = figures(R, best=True)   # the fastest run of each measurement
    targets = []
    best = []
    for nm, fig, fmt, cpu, cfmt, ok in spec:
        targets.append((nm, fmt % fig(F), cfmt % cpu(F) if cpu else "", ok(fig(F))))
        best.append(fmt % fig(B))
    lines = ["| measurement | textclf | PyTorch 1.13 | textclf / PyTorch | notes |",
             "|---|---|---|---|---|"] + rows
    lines += ["", "| target | measured (wall clock, median of %d) | same per CPU second "
              "| fastest run of each side | result |" % R["repeats"],
              "|---|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s | %s |" % (nm, v, c, b, "PASS" if ok else "FAIL")
              for (nm, v, c, ok), b in zip(targets, best)]
    lines += ["", "Overhead outside the math = (t_tokenize - t_floor) / t_predict, "
              "wall-clock medians over the same %d rows (in the CPU column: the same "
              "with the backend's CPU seconds).  tokenize() also builds a text[] of "
              "the tokens, which predict() does not, so this is an upper bound.  "
              "PASS/FAIL is judged on the wall-clock medians.  Other tenants of a "
              "shared machine only ever slow a run down, so the fastest run of each "
              "side (its own column) is the estimate least disturbed by them; it is "
              "shown, not judged." % n_test,
              "PyTorch batch 1 runs over the first %d of these rows." % R["scoring"]["torch_b1"]["n"]]
    return "\n".join(lines), targets


def write_docs(R, table, args):
    """Replace the marked block of docs/performance.md (or create it)."""
    cmd = "/usr/bin/python3 bench/perf.py" + (" " + " ".join(args.argv) if args.argv else "")
    body = "\n".join([
        BEGIN_MARK,
        "",
        "Run of %s on %s (%d cores, %s), PostgreSQL %s, torch %s; command: `%s`."
        % (R["date"], R["host"], os.cpu_count(), R["cpu"], R["pg_version"],
           R["torch_version"], cmd),
        "Training: %d IMDB training reviews per measurement (mean %.1f tokens after "
        "truncation to %d), 1 epoch; scoring: %d IMDB test reviews (mean %.1f tokens; "
        "table %s). Median of %d runs each."
        % (R["train_rows"], R["train_mean_len"], MAX_LEN, R["test_rows"],
           R["test_mean_len"], R["test_table_size"], args.repeats),
        "Machine load (1-minute load average sampled at each measurement): %s, "
        "on %d cores (when it exceeds the core count, other jobs take CPU time: "
        "the wall-clock figures fall and the thread and worker speed-ups are "
        "bounded by the free cores).%s" % (R["load"], os.cpu_count(),
                                          (" The measured processes ran at nice %d "
                                           "(postmaster reniced, backends inherit it)."
                                           % R["nice"]) if R.get("nice") else
                                          " Every process ran at the default priority."),
        "",
        table,
        "",
        "![performance](img/performance.svg)",
        "",
        END_MARK,
        ""])
    text = open(DOC_PATH, encoding="utf-8").read() if os.path.exists(DOC_PATH) else \
        "# Performance\n\n## Results\n\n"
    if BEGIN_MARK in text and END_MARK in text:
        a = text.index(BEGIN_MARK)
        b = text.index(END_MARK) + len(END_MARK)
        if text[b:b + 1] == "\n":
            b += 1
        text = text[:a] + body + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + body
    with open(DOC_PATH, "w", encoding="utf-8") as f:
        f.write(text)


def plot(R, path):
    """Throughput bars (log scale) and peak memory, textclf beside PyTorch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "textclf-perf"
    F = figures(R)
    bars = [
        ("train, 1 thread", F["tc_train1"], F["pt_train1"]),
        ("train, 2 threads", F["tc_train2"], F["pt_train2"]),
        ("predict vs batch 1", F["predict"], F["torch_b1"]),
        ("predict vs batch 256", F["predict"], F["torch_b256"]),
        ("predict, 2 workers", F["parallel"], None),
        ("tokenize()", F["tokenize"], None),
        ("floor length(text)", F["floor"], None),
    ]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2),
                                  gridspec_kw={"width_ratios": [3, 1.3]})
    ys = list(range(len(bars)))[::-1]
    h = 0.38
    base = 10.0                 # bars start here: the axis is logarithmic
    for y, (name, a, b) in zip(ys, bars):
        ax.barh(y + h / 2, a - base, h, left=base, color="#1f77b4",
                label="textclf (SQL)" if y == ys[0] else None)
        ax.text(a, y + h / 2, " %.0f" % a, va="center", fontsize=7)
        if b is not None:
            ax.barh(y - h / 2, b - base, h, left=base, color="#ff7f0e",
                    label="PyTorch 1.13" if y == ys[0] else None)
            ax.text(b, y - h / 2, " %.0f" % b, va="center", fontsize=7)
    ax.set_xlim(base, 4 * max(max(a, b or 0) for _, a, b in bars))
    ax.set_yticks(ys)
    ax.set_yticklabels([b[0] for b in bars], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("samples/s (training), rows/s (scoring); log scale")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Throughput (median of %d; load %s)" % (R["repeats"], R["load"].split()[0]),
                 fontsize=9)
    mem = [("train", F["tc_train_peak"], F["pt_train_peak"]),
           ("score", R["scoring_mem"]["peak_rss_kb"], F["pt_infer_peak"])]
    for i, (name, a, b) in enumerate(mem):
        ax2.bar(i - 0.2, a / 1024.0, 0.4, color="#1f77b4")
        ax2.bar(i + 0.2, b / 1024.0, 0.4, color="#ff7f0e")
        ax2.text(i - 0.2, a / 1024.0, "%.0f" % (a / 1024.0), ha="center", va="bottom", fontsize=7)
        ax2.text(i + 0.2, b / 1024.0, "%.0f" % (b / 1024.0), ha="center", va="bottom", fontsize=7)
    ax2.set_xticks([0, 1])
    ax2.set_xticklabels([m[0] for m in mem], fontsize=8)
    ax2.set_ylabel("peak RssAnon, MB")
    ax2.set_title("Private memory (backend vs PyTorch process)", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


# ---------------------------------------------------------------------------

def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--torch-worker":
        torch_worker(sys.argv[2], int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description="textclf vs PyTorch performance benchmark")
    ap.add_argument("--quick", action="store_true",
                    help="1,000 training rows, 5,000 test rows, 1 repeat, no docs")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--train-rows", type=int, default=None)
    ap.add_argument("--test-rows", type=int, default=None,
                    help="0 = all 25,000")
    ap.add_argument("--b1-rows", type=int, default=None,
                    help="rows of the PyTorch batch-1 measurement (default 2,000)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the measured processes (this script, the PyTorch "
                    "workers, the cluster's postmaster and so every backend) at "
                    "this nice value, e.g. -10 on a machine shared with other jobs "
                    "(root only for negative values)")
    ap.add_argument("--pgroot", default="/tmp/textclf-perf-pg")
    ap.add_argument("--keep-cluster", action="store_true")
    ap.add_argument("--write-docs", dest="docs", action="store_true", default=None)
    ap.add_argument("--no-docs", dest="docs", action="store_false")
    ap.add_argument("--json", default="/tmp/textclf_perf.json")
    ap.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: print (and with --write-docs write) "
                    "the report of an earlier run's raw results")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.from_json:
        with open(args.from_json) as f:
            R = json.load(f)
        args.repeats = R["repeats"]
        args.argv = R.get("argv", [a for a in args.argv if a not in
                                   ("--from-json", args.from_json)])
        table, targets = build_report(R, args)
        print(table)
        if args.docs:
            plot(R, PLOT_PATH)
            write_docs(R, table, args)
        return 0 if all(t[-1] for t in targets) else 1
    q = args.quick
    args.repeats = args.repeats or (1 if q else 5)
    args.train_rows = args.train_rows or (1000 if q else 5000)
    if args.test_rows is None:
        args.test_rows = 5000 if q else 0
    args.b1_rows = args.b1_rows or (500 if q else 2000)
    if args.docs is None:
        args.docs = not q
    ddir = os.path.abspath(os.environ.get("TEXTCLF_DATASETS")
                           or os.path.join(REPO, "..", "shared", "datasets"))
    db = "textclf_perf"

    R = {"date": datetime.date.today().isoformat(), "host": platform.node(),
         "repeats": args.repeats, "argv": args.argv}
    try:
        with open("/proc/cpuinfo") as f:
            R["cpu"] = re.search(r"model name\s*:\s*(.*)", f.read()).group(1).strip()
    except (OSError, AttributeError):
        R["cpu"] = platform.processor()
    env = start_cluster(args.pgroot, drop_env=TORCH_ENV)
    R["nice"] = args.nice
    with open(os.path.join(args.pgroot, "data", "postmaster.pid")) as f:
        pm = int(f.readline().strip())
    own_group = set_priority(os.getpid(), args.nice)
    set_priority(pm, args.nice)
    try:
        psql(env, "DROP DATABASE IF EXISTS %s;\nCREATE DATABASE %s;\n" % (db, db), "postgres")
        psql(env, "CREATE EXTENSION textclf;\n", db)
        R["pg_version"] = psql(env, "SHOW server_version;\n", db).strip()
        log("loading IMDB (%d training rows, %s test rows)"
            % (args.train_rows, args.test_rows or "all"))
        R["train_rows"], R["test_rows"], R["test_table_size"] = load_tables(
            env, db, ddir, args.train_rows, args.test_rows)

        # the token ids for PyTorch: tokenize() of a small model with the same
        # vocabulary settings (the vocabulary does not depend on the layers)
        psql(env, "SELECT version FROM train_classifier('perf_vocab', 'perf_train', "
             "'text', 'label', '{\"epochs\": 1, \"vocab_size\": %d, \"max_len\": %d, "
             "\"embedding_dim\": 2, \"hidden_size\": 2}');\n" % (VOCAB_SIZE, MAX_LEN), db)
        npz = os.path.join(tempfile.gettempdir(), "textclf_perf_tokens.npz")
        R["train_mean_len"], R["test_mean_len"] = save_token_ids(
            npz, fetch_token_ids(env, db, "perf_train", "perf_vocab"),
            fetch_token_ids(env, db, "imdb_test", "perf_vocab"))

        # training: textclf (a fresh backend each) and PyTorch, 1 and 2
        # threads, interleaved
        log("training, %d rows per measurement" % R["train_rows"])
        R["train"] = {"1": [], "2": []}
        R["torch"] = {"train1": [], "train2": []}
        tws = {1: TorchWorker(npz, 1), 2: TorchWorker(npz, 2)}
        R["torch_version"] = tws[1].hello["torch_version"]
        R["torch"]["ready_rss_kb"] = tws[1].hello["rss_ready_kb"]
        for r in range(args.repeats):
            for th in ((1, 2) if r % 2 == 0 else (2, 1)):
                for side in (("textclf", "torch") if (r + th) % 2 else ("torch", "textclf")):
                    if side == "textclf":
                        x = textclf_train(env, db, th, r + 1)
                        R["train"][str(th)].append(x)
                        log("  textclf threads=%d: %.0f samples/s (epoch %.2f s, call %.2f s, "
                            "peak RssAnon %d kB), load %.2f"
                            % (th, x["samples_per_s"], x["epoch_seconds"],
                               x["call_seconds"], x["peak_rss_kb"], LOAD.samples[-1]))
                    else:
                        x = tws[th].run(op="train", threads=th, seed=r + 1)
                        R["torch"]["train%d" % th].append(x)
                        log("  PyTorch threads=%d: %.0f samples/s, load %.2f"
                            % (th, x["rate"], LOAD.samples[-1]))
        R["torch"]["train_peak_rss_kb"] = max(tws[1].close(), tws[2].close())

        # scoring: textclf serial, interleaved with PyTorch batch 1 / 256
        log("scoring, %d rows (PyTorch batch 1: %d rows)" % (R["test_rows"], args.b1_rows))
        tw = TorchWorker(npz, 1)
        R["scoring"], R["scoring_mem"] = scoring_round(env, db, args.repeats, tw,
                                                       args.b1_rows)
        R["torch"]["infer_peak_rss_kb"] = tw.close()
        os.unlink(npz)
        log("parallel vs serial")
        R["parallel"] = textclf_parallel(env, db, args.repeats)
        log("  %s" % R["parallel"]["plan"].replace("\n", "\n  "))
        log("first predict() in a new backend")
        R["first_call"] = textclf_first_call(env, db, args.repeats)
    finally:
        if own_group is not None:
            autogroup_nice(os.getpid(), own_group)
        if not args.keep_cluster:
            stop_cluster(env)
    R["load"] = LOAD.summary()
    with open(args.json, "w") as f:
        json.dump(R, f, indent=1)
    table, targets = build_report(R, args)
    print("# textclf vs PyTorch: %d training rows, %d scoring rows, median of %d; "
          "load average during the run %s on %d cores; nice %d"
          % (R["train_rows"], R["test_rows"], args.repeats, R["load"], os.cpu_count(),
             args.nice))
    print(table)
    if args.docs:
        plot(R, PLOT_PATH)
        write_docs(R, table, args)
        log("wrote %s and %s" % (DOC_PATH, PLOT_PATH))
    return 0 if all(t[-1] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
