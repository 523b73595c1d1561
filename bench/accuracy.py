#!/usr/bin/python3
"""
accuracy.py
    Side-by-side accuracy benchmark: textclf trained IN SQL against the same
    architecture in PyTorch, plus two classic baselines (fastText, TF-IDF +
    logistic regression), on the data sets of ../shared/datasets.

Run from anywhere with Debian's Python (torch 1.13, numpy, scikit-learn and
matplotlib are Debian packages; fastText is Debian's `fasttext` CLI):

    /usr/bin/python3 bench/accuracy.py                  # full run, writes docs
    /usr/bin/python3 bench/accuracy.py --quick          # smoke run, no docs
    /usr/bin/python3 bench/accuracy.py --datasets sms_spam,ag_news --seeds 3

What one run does, per data set and per seed s (1 .. --seeds):

  1. loads <ds>_train / <ds>_test into a private PostgreSQL cluster
     (tools/pgcluster.sh with TEXTCLF_PGROOT=--pgroot, a fresh database
     textclf_bench) with psql's \\copy ... FROM PROGRAM 'gzip -dc ...';
  2. textclf, fixed epochs: train_classifier(..., '{"epochs": E,
     "patience": 0, "validation_fraction": 0, "dropout": 0,
     "ema_momentum": 0, "seed": s, "threads": 1}') (the reference model:
     no dropout, no moving average of the weights),
     test accuracy from evaluate();
  3. PyTorch, the same model and the same inputs: the token lists come from
     textclf itself (SELECT tokenize(model, text) for every train and test
     row, after the seed-1 model is trained; the vocabulary does not depend
     on the seed), mapped to ids consistently.  Embedding(10000, 16) ->
     LSTM(128) over packed sequences (no padding work; an empty sequence
     gives h = 0, the bias-only case, as in textclf) -> Linear(K) with
     BCEWithLogits (2 classes, K = 1) or CrossEntropy.  Keras's init
     (embedding U(-0.05, 0.05), Glorot-uniform kernels, orthogonal
     recurrent kernel, zero biases with forget-gate bias 1).  The LSTM has
     ONE trained bias vector like Keras and textclf: bias_hh is kept at zero
     and frozen (training both PyTorch biases would move the effective bias
     with twice Adam's step).  Adam written out by hand with Keras's epsilon
     convention (lr 1e-3, betas 0.9/0.999, eps 1e-7: p -= lr_t m /
     (sqrt(v) + eps), lr_t = lr sqrt(1-b2^t)/(1-b1^t)), dense updates of
     every parameter (textclf's Adam is dense too), batch 32, mean loss per
     batch, reshuffled each epoch, E epochs, torch.manual_seed(s), one
     thread;
  4. fastText (`fasttext supervised -epoch 5 -wordNgrams 2 -thread 1
     -seed s`, lower-cased text with punctuation split off; Chinese split
     into characters) and TF-IDF (1-2 word n-grams, min_df 2, sublinear tf;
     Chinese: char_wb 1-3 grams) + LogisticRegression(C=4, max_iter=1000),
     the latter deterministic and run once;
  5. textclf with its defaults (only seed and threads given: early stopping
     with patience 3, at most 10 epochs, 10% validation rows, dropout 0.5,
     the moving average of the weights with momentum 0.99);
and then prints (and, unless --quick, writes into a marked block of
docs/accuracy.md) a table of means and standard deviations with PASS/FAIL
for the two targets:
    textclf (fixed E epochs) >= PyTorch - 0.5 point
    textclf (defaults)       >= PyTorch
On imdb it also draws the validation loss per epoch of a textclf run
(validation_fraction 0.1, patience 0, dropout 0, ema_momentum 0, 6 epochs, from
textclf.training_log)
and of PyTorch on its own 10% hold-out of the same training rows, into
docs/img/imdb_val_loss.svg.

Nothing here tunes either side: both use the reference settings, and the
baselines use fixed, common settings chosen before looking at test scores.
Raw results go to --json (default /tmp/textclf_accuracy.json) after every
data set, so an interrupted run keeps what it measured.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (REPO, log, psql_error, run_psql, sql_literal,
                      start_cluster, stop_cluster)

ALL_DATASETS = ["imdb", "sms_spam", "sst2", "ag_news", "chnsenticorp"]
QUICK_DATASETS = ["sms_spam", "ag_news"]
# run the small ones first, so that partial results come early
RUN_ORDER = ["sms_spam", "ag_news", "chnsenticorp", "sst2", "imdb"]
CHINESE = {"chnsenticorp"}
EXTRA_COLUMNS = {"imdb": ["rating", "id"]}

DOC_PATH = os.path.join(REPO, "docs", "accuracy.md")
PLOT_PATH = os.path.join(REPO, "docs", "img", "imdb_val_loss.svg")
BEGIN_MARK = "<!-- BEGIN accuracy-table (written by bench/accuracy.py; do not edit) -->"
END_MARK = "<!-- END accuracy-table -->"

# reference architecture and optimiser (textclf's defaults)
VOCAB_SIZE = 10000
EMBED_DIM = 16
HIDDEN = 128
BATCH = 32
LR = 1e-3
BETA1 = 0.9
BETA2 = 0.999
EPS = 1e-7
TFIDF_C = 4.0
FASTTEXT_EPOCHS = 5


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

class Pg:
    """A private cluster (tools/pgcluster.sh) and a psql runner."""

    LOAD_ERRORS = ("undefined symbol", "could not load library",
                   "could not access file", "server closed the connection")

    def __init__(self, pgroot, dbname):
        self.pgroot = pgroot
        self.dbname = dbname
        # MALLOC_ENV is for this process only, not the server
        self.env = start_cluster(pgroot, drop_env=MALLOC_ENV)

    def stop(self):
        """Stop the cluster (its data stays in pgroot)."""
        stop_cluster(self.env)

    def psql(self, script, db=None, retries=8):
        """Run script in one psql session; return stdout (unaligned, tuples
        only).  A failure to load textclf.so (another engineer reinstalling
        it) is retried after a pause; any other error raises."""
        # no synchronized scans: train_classifier must read a table from its
        # first block, in the order textclf_tokens() fetches it
        script = "SET synchronize_seqscans = off;\n" + script
        for attempt in range(retries + 1):
            rc, out, err = run_psql(self.env, script, db or self.dbname)
            if rc == 0:
                return out
            if attempt < retries and any(e in err for e in self.LOAD_ERRORS):
                log("psql failed loading textclf (%s); retrying in 90 s"
                    % err.strip().splitlines()[-1])
                time.sleep(90)
                continue
            raise psql_error(err, script)

    def json_rows(self, query):
        """Rows of a query returning one json value per row."""
        out = self.psql(query + ";\n")
        # one value per line; not splitlines(): it also breaks at U+2028,
        # U+0085 and other characters that JSON leaves unescaped in texts
        return [json.loads(line) for line in out.split("\n") if line]

    def fresh_database(self):
        """Drop and recreate the benchmark database with textclf in it."""
        self.psql("DROP DATABASE IF EXISTS %s;\n" % self.dbname, db="postgres")
        self.psql("CREATE DATABASE %s;\n" % self.dbname, db="postgres")
        self.psql("CREATE EXTENSION textclf;\n")


def datasets_dir():
    """$TEXTCLF_DATASETS, else ../shared/datasets beside the checkout."""
    d = os.environ.get("TEXTCLF_DATASETS") or os.path.join(REPO, "..", "shared",
                                                          "datasets")
    return os.path.abspath(d)


def load_dataset(pg, ds, ddir, max_train, max_test):
    """Create and fill <ds>_train and <ds>_test; return their row counts."""
    counts = {}
    for split, limit in (("train", max_train), ("test", max_test)):
        path = os.path.join(ddir, "%s_%s.csv.gz" % (ds, split))
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        if any(c in path for c in "'\"$`\\"):
            raise ValueError("unsupported characters in %r" % path)
        table = "%s_%s" % (ds, split)
        extra = EXTRA_COLUMNS.get(ds, [])
        coldefs = "".join(", %s text" % c for c in extra)
        cols = ",".join(["text", "label"] + extra)
        script = ("DROP TABLE IF EXISTS %s;\n"
                  "CREATE TABLE %s (rid bigserial PRIMARY KEY, text text, label text%s);\n"
                  "\\copy %s(%s) FROM PROGRAM %s CSV HEADER\n"
                  % (table, table, coldefs, table, cols,
                     sql_literal('gzip -dc "%s"' % path)))
        if limit:
            # a deterministic subset, not the first rows (files may be sorted)
            script += ("DELETE FROM %s WHERE rid NOT IN (SELECT rid FROM %s "
                       "ORDER BY md5(rid::text) LIMIT %d);\n" % (table, table, limit))
        script += "ANALYZE %s;\nSELECT count(*) FROM %s;\n" % (table, table)
        counts[split] = int(pg.psql(script).strip().splitlines()[-1])
    return counts


def textclf_train(pg, model, table, options):
    """train_classifier(); returns its result row as a dict."""
    q = ("SELECT row_to_json(r) FROM train_classifier(%s, %s, 'text', 'label', "
         "%s::jsonb) r" % (sql_literal(model), sql_literal(table),
                           sql_literal(json.dumps(options))))
    return pg.json_rows(q)[0]


def textclf_evaluate(pg, model, table):
    """evaluate() of a model on a table (a dict)."""
    return pg.json_rows("SELECT evaluate(%s, %s, 'text', 'label')"
                        % (sql_literal(model), sql_literal(table)))[0]


def textclf_tokens(pg, model, table):
    """[(label, [token, ...]), ...] in the order train_classifier reads the
    table (its sequential scan: physical order, ctid), tokens from
    tokenize().  Not rid order: COPY fills free space left in earlier pages,
    so later rows can sit before earlier ones."""
    rows = pg.json_rows("SELECT json_build_array(label, tokenize(%s, text)) "
                        "FROM %s ORDER BY ctid" % (sql_literal(model), table))
    return [(r[0], r[1] or []) for r in rows]


def table_rows(pg, table):
    """[(text, label), ...] in rid order."""
    rows = pg.json_rows("SELECT json_build_array(text, label) FROM %s ORDER BY rid"
                        % table)
    return [(r[0] or "", r[1]) for r in rows]


def training_log(pg, model):
    """The rows of textclf.training_log of a model's version 1."""
    return pg.json_rows("SELECT row_to_json(l) FROM textclf.training_log l "
                        "WHERE model_name = %s ORDER BY version, epoch"
                        % sql_literal(model))


# ---------------------------------------------------------------------------
# PyTorch: the same model
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# textclf's random draws, reproduced (src/core/model.c, src/core/trainer.c)
# ---------------------------------------------------------------------------
#
# The PyTorch side starts from the very weights textclf starts from for the
# same seed and sees the training rows in the very order textclf's trainer
# visits them.  With independent draws the two sides' means over 3 seeds
# differ by several points on AG News from the draws alone (its runs are
# bimodal: some seeds sit on a loss plateau for epochs), which says nothing
# about the implementations; paired runs compare the implementations.  The
# check that the pairing holds: both sides' first-epoch training loss is
# recorded and printed, and they agree to about 1e-3.

M64 = (1 << 64) - 1


def tc_mix64(x):
    """splitmix64 finaliser (tc_mix64)."""
    x &= M64
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & M64
    x ^= x >> 31
    return x


class TcRng:
    """xoshiro256** seeded through splitmix64, as tc_rng_seed/tc_rng_next."""

    def __init__(self, seed):
        z = seed & M64
        self.s = []
        for _ in range(4):
            z = (z + 0x9e3779b97f4a7c15) & M64
            self.s.append(tc_mix64(z))

    def next(self):
        s = self.s
        x = (s[1] * 5) & M64
        result = ((((x << 7) | (x >> 57)) & M64) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & M64
        return result

    def below(self, n):
        """Uniform in [0, n) by rejection (tc_rng_below)."""
        limit = ((1 << 64) - n) % n
        while True:
            x = self.next()
            if x >= limit:
                return x % n

    def uniforms(self, n):
        """n floats in [0, 1) from the top 24 bits (tc_rng_uniform)."""
        return [(self.next() >> 40) / 16777216.0 for _ in range(n)]


def textclf_init(np, seed, V, E, H, K):
    """tc_model_init: Keras's initialisers drawn from textclf's stream, in
    its order (embedding, kernel, recurrent kernel, dense kernel); the
    tensors in Keras layout as float32 arrays."""
    r = TcRng(seed)
    G = 4 * H

    def uniform(shape, limit):
        n = int(np.prod(shape))
        u = np.array(r.uniforms(n), dtype=np.float64)
        return ((2.0 * u - 1.0) * limit).astype(np.float32).reshape(shape)

    emb = uniform((V, E), 0.05)
    Wx = uniform((E, G), math.sqrt(6.0 / (E + G)))
    # orthogonal (H, G): Box-Muller normals, modified Gram-Schmidt over rows
    Wh = np.zeros((H, G), dtype=np.float32)
    for j in range(H):
        bits = [r.next() for _ in range(2 * G)]
        u1 = (np.array(bits[0::2], dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
        u2 = (np.array(bits[1::2], dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
        u1 = (u1 + 1.0) * (1.0 / 9007199254740992.0)
        u2 = u2 * (1.0 / 9007199254740992.0)
        v = np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586476925286766559 * u2)
        for k in range(j):
            q = Wh[k].astype(np.float64)
            v = v - float(np.dot(v, q)) * q
        norm = float(np.sqrt(np.dot(v, v))) or 1.0
        Wh[j] = (v / norm).astype(np.float32)
    b = np.zeros(G, dtype=np.float32)
    b[H:2 * H] = 1.0
    Wd = uniform((H, K), math.sqrt(6.0 / (H + K)))
    bd = np.zeros(K, dtype=np.float32)
    return {"embedding": emb, "kernel": Wx, "recurrent_kernel": Wh,
            "bias": b, "dense_kernel": Wd, "dense_bias": bd}


def textclf_epoch_orders(seed, n, epochs):
    """The order textclf's trainer visits n training rows in each epoch:
    a Fisher-Yates shuffle per epoch from one stream (run_epochs)."""
    r = TcRng(tc_mix64((seed ^ 0x53485546464c45) & M64))
    items = list(range(n))
    for _ in range(epochs):
        for i in range(n, 1, -1):
            j = r.below(i)
            items[i - 1], items[j] = items[j], items[i - 1]
        yield list(items)


def tc_is_validation_row(seed, i, fraction):
    """Is row ordinal i a validation row of textclf for this seed?"""
    if fraction <= 0.0:
        return False
    h = tc_mix64((seed ^ tc_mix64((i + 0x9E3779B97F4A7C15) & M64)) & M64)
    return (h >> 11) * (1.0 / 9007199254740992.0) < fraction


def torch_setup():
    """Import torch lazily, single-threaded."""
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


class Encoded:
    """Token id sequences as a padded int64 array (N, T) plus lengths."""

    def __init__(self, np, seqs, targets):
        T = max([len(s) for s in seqs] + [1])
        self.ids = np.zeros((len(seqs), T), dtype=np.int64)
        self.lens = np.zeros(len(seqs), dtype=np.int64)
        for i, s in enumerate(seqs):
            self.ids[i, :len(s)] = s
            self.lens[i] = len(s)
        self.y = np.asarray(targets, dtype=np.int64)

    def __len__(self):
        return len(self.y)

    def subset(self, np, idx):
        """A copy holding the rows idx."""
        e = Encoded.__new__(Encoded)
        e.ids = self.ids[idx]
        e.lens = self.lens[idx]
        e.y = self.y[idx]
        return e


def encode_tokens(np, train_tok, test_tok, vocabulary, labels):
    """Map textclf's token strings to textclf's own word ids (the exported
    vocabulary, so that row id of the embedding is the same word on both
    sides) and labels to textclf's class indices (its label order)."""
    lab = {l: i for i, l in enumerate(labels)}

    def ids(toks):
        try:
            return [vocabulary[t] for t in toks]
        except KeyError as e:
            raise RuntimeError("token %r from tokenize() is not in the exported "
                               "vocabulary" % e.args[0])
    tr = Encoded(np, [ids(toks) for _, toks in train_tok],
                 [lab[l] for l, _ in train_tok])
    te = Encoded(np, [ids(toks) for _, toks in test_tok],
                 [lab[l] for l, _ in test_tok])
    return tr, te, len(vocabulary)


def make_model(torch, K, init):
    """Embedding -> LSTM (packed) -> Linear, starting from init (the
    tensors of textclf_init, Keras layouts)."""
    nn = torch.nn
    from torch.nn.utils.rnn import pack_padded_sequence

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB_SIZE, EMBED_DIM)
            self.lstm = nn.LSTM(EMBED_DIM, HIDDEN, batch_first=True)
            self.fc = nn.Linear(HIDDEN, K)

        def forward(self, ids, lens):
            """logits (B,K) of ids (B,T) with lengths lens (B) (CPU int64)."""
            nz = lens > 0
            if bool(nz.all()):
                x = self.emb(ids)
                packed = pack_padded_sequence(x, lens, batch_first=True,
                                              enforce_sorted=False)
                _, (h_n, _) = self.lstm(packed)
                h = h_n[0]
            else:
                # empty sequences: h = 0, the logits are the bias alone
                h = torch.zeros(ids.shape[0], HIDDEN)
                idx = nz.nonzero().squeeze(1)
                if idx.numel() > 0:
                    x = self.emb(ids[idx])
                    packed = pack_padded_sequence(x, lens[idx], batch_first=True,
                                                  enforce_sorted=False)
                    _, (h_n, _) = self.lstm(packed)
                    h = h.index_copy(0, idx, h_n[0])
            return self.fc(h)

    net = Net()
    with torch.no_grad():
        # Keras layouts -> PyTorch's: weight_ih (4H,E) = kernel^T, weight_hh
        # (4H,H) = recurrent_kernel^T, gate order i,f,g,o = Keras's i,f,c,o
        net.emb.weight.copy_(torch.from_numpy(init["embedding"]))
        net.lstm.weight_ih_l0.copy_(torch.from_numpy(init["kernel"].T.copy()))
        net.lstm.weight_hh_l0.copy_(torch.from_numpy(init["recurrent_kernel"].T.copy()))
        net.lstm.bias_ih_l0.copy_(torch.from_numpy(init["bias"]))
        net.lstm.bias_hh_l0.zero_()
        net.fc.weight.copy_(torch.from_numpy(init["dense_kernel"].T.copy()))
        net.fc.bias.copy_(torch.from_numpy(init["dense_bias"]))
    net.lstm.bias_hh_l0.requires_grad_(False)   # one bias, as Keras/textclf
    return net


class KerasAdam:
    """Adam with Keras's epsilon convention, dense, written out by hand."""

    def __init__(self, torch, params):
        self.torch = torch
        self.params = [p for p in params if p.requires_grad]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.t += 1
        lr_t = LR * math.sqrt(1.0 - BETA2 ** self.t) / (1.0 - BETA1 ** self.t)
        with self.torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(BETA1).add_(g, alpha=1.0 - BETA1)
                v.mul_(BETA2).addcmul_(g, g, value=1.0 - BETA2)
                p.addcdiv_(m, v.sqrt().add_(EPS), value=-lr_t)


def batch_tensors(torch, data, idx):
    """(ids, lens, y) tensors of rows idx, trimmed to the longest row."""
    lens = data.lens[idx]
    T = max(int(lens.max()), 1)
    return (torch.from_numpy(data.ids[idx, :T]), torch.from_numpy(lens),
            torch.from_numpy(data.y[idx]))


def loss_fn(torch, logits, y, K):
    """Mean BCE-with-logits (K = 1) or cross-entropy over the batch."""
    F = torch.nn.functional
    if K == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(torch.float32))
    return F.cross_entropy(logits, y)


def torch_evaluate(torch, np, net, data, K, bsz=256):
    """(accuracy, mean loss) of net on data."""
    correct = 0
    total_loss = 0.0
    net.eval()
    with torch.no_grad():
        for s in range(0, len(data), bsz):
            idx = np.arange(s, min(s + bsz, len(data)))
            ids, lens, y = batch_tensors(torch, data, idx)
            logits = net(ids, lens)
            total_loss += float(loss_fn(torch, logits, y, K)) * len(idx)
            if K == 1:
                pred = (logits[:, 0] >= 0).to(torch.int64)  # p >= 0.5
            else:
                pred = logits.argmax(1)
            correct += int((pred == y).sum())
    net.train()
    return correct / len(data), total_loss / len(data)


def torch_train(torch, np, train, K, seed, epochs, val=None):
    """Train the reference model; returns (net, per-epoch log, seconds)."""
    torch.manual_seed(seed)
    net = make_model(torch, K, textclf_init(np, seed, VOCAB_SIZE, EMBED_DIM,
                                            HIDDEN, K))
    opt = KerasAdam(torch, net.parameters())
    hist = []
    t0 = time.time()
    n = len(train)
    for ep, order in enumerate(textclf_epoch_orders(seed, n, epochs)):
        te = time.time()
        perm = np.asarray(order, dtype=np.int64)
        tot = 0.0
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            ids, lens, y = batch_tensors(torch, train, idx)
            logits = net(ids, lens)
            loss = loss_fn(torch, logits, y, K)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
        row = {"epoch": ep + 1, "loss": tot / n, "seconds": time.time() - te}
        if val is not None:
            row["validation_accuracy"], row["validation_loss"] = \
                torch_evaluate(torch, np, net, val, K)
        hist.append(row)
        log("  pytorch epoch %d: loss %.4f%s, %.0f rows/s"
            % (ep + 1, row["loss"],
               (", val loss %.4f" % row["validation_loss"]) if val is not None else "",
               n / row["seconds"]))
    return net, hist, time.time() - t0


# ---------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------

FT_PUNCT = re.compile(r"([!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~'])")


def fasttext_text(text, chinese):
    """Lower-cased, punctuation split off (Chinese: every character a token)."""
    t = text.lower()
    if chinese:
        return " ".join(ch for ch in t if not ch.isspace())
    return " ".join(FT_PUNCT.sub(r" \1 ", t).split())


def run_fasttext(train_rows, test_rows, chinese, seed, workdir):
    """fastText supervised test accuracy (P@1 with one label per row)."""
    def write(path, rows):
        with open(path, "w", encoding="utf-8") as f:
            for text, label in rows:
                f.write("__label__%s %s\n" % (label.replace(" ", "_"),
                                              fasttext_text(text, chinese)))
    tr = os.path.join(workdir, "ft_train.txt")
    te = os.path.join(workdir, "ft_test.txt")
    # fastText reads its file in order, with a learning rate that decays to
    # zero: a file sorted by label (imdb's is) leaves it predicting the
    # last label.  Shuffle, as fastText's own examples do.
    import random
    rows = list(train_rows)
    random.Random(seed).shuffle(rows)
    write(tr, rows)
    write(te, test_rows)
    out = os.path.join(workdir, "ft_model")
    t0 = time.time()
    subprocess.run(["fasttext", "supervised", "-input", tr, "-output", out,
                    "-epoch", str(FASTTEXT_EPOCHS), "-wordNgrams", "2",
                    "-thread", "1", "-seed", str(seed), "-verbose", "0"],
                   check=True, stdout=subprocess.DEVNULL)
    secs = time.time() - t0
    res = subprocess.run(["fasttext", "test", out + ".bin", te], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"P@1\s+([0-9.]+)", res)
    if not m:
        raise RuntimeError("fasttext test output: %r" % res)
    for ext in (".bin", ".vec"):
        if os.path.exists(out + ext):
            os.unlink(out + ext)
    return float(m.group(1)), secs


def run_tfidf(train_rows, test_rows, chinese):
    """TF-IDF + logistic regression test accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    if chinese:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2,
                              sublinear_tf=True)
    else:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    t0 = time.time()
    X = vec.fit_transform([t for t, _ in train_rows])
    clf = LogisticRegression(C=TFIDF_C, max_iter=1000)
    clf.fit(X, [l for _, l in train_rows])
    secs = time.time() - t0
    pred = clf.predict(vec.transform([t for t, _ in test_rows]))
    acc = sum(int(p == l) for p, (_, l) in zip(pred, test_rows)) / len(test_rows)
    return acc, secs


# ---------------------------------------------------------------------------
# one data set
# ---------------------------------------------------------------------------

def installed_library_md5():
    """md5 of the installed textclf.so (the code the cluster runs)."""
    import hashlib
    try:
        libdir = subprocess.run(["pg_config", "--pkglibdir"], text=True,
                                stdout=subprocess.PIPE, check=True).stdout.strip()
        with open(os.path.join(libdir, "textclf.so"), "rb") as f:
            return hashlib.md5(f.read()).hexdigest()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def bench_dataset(pg, ds, args, seeds, torch, np):
    """Every measurement of one data set, as a dict."""
    ddir = datasets_dir()
    res = {"dataset": ds, "seeds": seeds, "epochs": args.epochs, "runs": [],
           "library_md5": [installed_library_md5()], "machine": machine_note()}
    t0 = time.time()
    res["rows"] = load_dataset(pg, ds, ddir, args.max_train, args.max_test)
    log("%s: loaded %d train / %d test rows" % (ds, res["rows"]["train"],
                                                res["rows"]["test"]))
    train_t, test_t = ds + "_train", ds + "_test"
    chinese = ds in CHINESE
    train_rows = test_rows = None
    enc = None
    for seed in seeds:
        run = {"seed": seed}
        # 2. textclf, fixed epochs
        fixed = "%s_fixed_s%d" % (ds, seed)
        r = textclf_train(pg, fixed, train_t,
                          {"epochs": args.epochs, "patience": 0,
                           "validation_fraction": 0, "dropout": 0, "ema_momentum": 0,
                           "seed": seed, "threads": 1})
        ev = textclf_evaluate(pg, fixed, test_t)
        tlog = training_log(pg, fixed)
        run["textclf_fixed"] = {"accuracy": ev["accuracy"],
                                "log_loss": ev.get("log_loss"),
                                "train_loss": r["train_loss"],
                                "epoch_losses": [x["loss"] for x in tlog],
                                "seconds": r["seconds"]}
        labels = r["labels"]
        log("%s seed %d: textclf fixed %d epochs: test accuracy %.4f (%.1f s)"
            % (ds, seed, args.epochs, ev["accuracy"], r["seconds"]))
        # 3. PyTorch on textclf's tokens
        if enc is None:
            train_tok = textclf_tokens(pg, fixed, train_t)
            test_tok = textclf_tokens(pg, fixed, test_t)
            doc = pg.json_rows("SELECT export_model(%s)" % sql_literal(fixed))[0]
            if doc["labels"] != labels:
                raise RuntimeError("export labels %r != %r" % (doc["labels"], labels))
            tr, te, nwords = encode_tokens(np, train_tok, test_tok,
                                           doc["vocabulary"], labels)
            del doc
            enc = (tr, te)
            res["labels"] = labels
            res["distinct_tokens"] = nwords
            res["empty_rows"] = {"train": int((tr.lens == 0).sum()),
                                 "test": int((te.lens == 0).sum())}
        tr, te = enc
        K = 1 if len(labels) == 2 else len(labels)
        net, hist, secs = torch_train(torch, np, tr, K, seed, args.epochs)
        acc, tloss = torch_evaluate(torch, np, net, te, K)
        run["pytorch"] = {"accuracy": acc, "log_loss": tloss,
                          "train_loss": hist[-1]["loss"],
                          "epoch_losses": [h["loss"] for h in hist],
                          "seconds": secs}
        log("%s seed %d: pytorch %d epochs: test accuracy %.4f (%.1f s); "
            "epoch-1 training loss %.5f (textclf %.5f)"
            % (ds, seed, args.epochs, acc, secs, hist[0]["loss"],
               run["textclf_fixed"]["epoch_losses"][0]))
        # 5. textclf defaults
        dflt = "%s_default_s%d" % (ds, seed)
        r = textclf_train(pg, dflt, train_t, {"seed": seed, "threads": 1})
        ev = textclf_evaluate(pg, dflt, test_t)
        run["textclf_default"] = {"accuracy": ev["accuracy"],
                                  "epochs_run": r["epochs"],
                                  "seconds": r["seconds"]}
        log("%s seed %d: textclf defaults (%d epochs run): test accuracy %.4f (%.1f s)"
            % (ds, seed, r["epochs"], ev["accuracy"], r["seconds"]))
        # 4. baselines
        if train_rows is None:
            train_rows = table_rows(pg, train_t)
            test_rows = table_rows(pg, test_t)
        with tempfile.TemporaryDirectory(prefix="textclf-ft-") as wd:
            acc, secs = run_fasttext(train_rows, test_rows, chinese, seed, wd)
        run["fasttext"] = {"accuracy": acc, "seconds": secs}
        log("%s seed %d: fastText: test accuracy %.4f (%.1f s)" % (ds, seed, acc, secs))
        if seed == seeds[0]:
            acc, secs = run_tfidf(train_rows, test_rows, chinese)
            res["tfidf_lr"] = {"accuracy": acc, "seconds": secs}
            log("%s: TF-IDF + LR: test accuracy %.4f (%.1f s)" % (ds, acc, secs))
        res["runs"].append(run)
    if ds == "imdb" and args.plot:
        res["val_curve"] = val_curve(pg, ds, args, seeds[0], torch, np, enc, labels)
    res["wall_seconds"] = time.time() - t0
    res["library_md5"].append(installed_library_md5())
    return res


def val_curve(pg, ds, args, seed, torch, np, enc, labels):
    """Validation loss per epoch of textclf and PyTorch (10% held out)."""
    E = args.plot_epochs
    name = "%s_valcurve_s%d" % (ds, seed)
    textclf_train(pg, name, ds + "_train",
                  {"epochs": E, "patience": 0, "validation_fraction": 0.1,
                   "dropout": 0, "ema_momentum": 0, "seed": seed, "threads": 1})
    tlog = training_log(pg, name)
    tr, _ = enc
    # textclf's own split of the rows (in the order it reads them)
    isval = np.array([tc_is_validation_row(seed, i, 0.1) for i in range(len(tr))])
    val = tr.subset(np, np.flatnonzero(isval))
    fit = tr.subset(np, np.flatnonzero(~isval))
    K = 1 if len(labels) == 2 else len(labels)
    _, hist, _ = torch_train(torch, np, fit, K, seed, E, val=val)
    curve = {"textclf": [{"epoch": r["epoch"], "loss": r["loss"],
                          "validation_loss": r["validation_loss"],
                          "validation_accuracy": r["validation_accuracy"]}
                         for r in tlog],
             "pytorch": hist, "seed": seed, "epochs": E}
    plot_curve(curve, PLOT_PATH)
    log("%s: wrote %s" % (ds, os.path.relpath(PLOT_PATH, REPO)))
    return curve


def plot_curve(curve, path):
    """The validation (solid) and training (dashed) loss per epoch, as SVG."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "textclf"
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, label, color in (("textclf", "textclf (in SQL)", "tab:blue"),
                              ("pytorch", "PyTorch", "tab:orange")):
        rows = curve[key]
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["validation_loss"] for r in rows], "-o", color=color,
                label=label + ", validation")
        ax.plot(ep, [r["loss"] for r in rows], "--", color=color, alpha=0.6,
                label=label + ", training")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title("IMDB: loss per epoch (10%% held out, seed %d)" % curve["seed"])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def mean_sd(xs):
    """(mean, sample sd or 0) of a list."""
    m = statistics.mean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, sd


def pct(x):
    return "%.2f" % (100.0 * x)


def summarize(res):
    """The table row of one data set (numbers in points)."""
    runs = res["runs"]
    fx = mean_sd([r["textclf_fixed"]["accuracy"] for r in runs])
    pt = mean_sd([r["pytorch"]["accuracy"] for r in runs])
    df = mean_sd([r["textclf_default"]["accuracy"] for r in runs])
    ft = mean_sd([r["fasttext"]["accuracy"] for r in runs])
    diff = 100.0 * (fx[0] - pt[0])
    return {
        "fixed": fx, "pytorch": pt, "default": df, "fasttext": ft,
        "tfidf": res["tfidf_lr"]["accuracy"], "diff": diff,
        "pass_fixed": fx[0] >= pt[0] - 0.005,
        "pass_default": df[0] >= pt[0],
        "epochs_run": [r["textclf_default"]["epochs_run"] for r in runs],
    }


def render(results, args, seeds, partial):
    """The markdown block: command, machine, accuracy and time tables."""
    done = [ds for ds in ALL_DATASETS if ds in results]
    lines = []
    cmd = "/usr/bin/python3 bench/accuracy.py " + " ".join(args.argv)
    lines.append("Regenerate with: `%s`" % cmd.strip())
    lines.append("")
    notes = sorted(set(results[ds].get("machine") or "" for ds in done) - {""})
    lines.append("Run on %s: %s" % (datetime.date.today().isoformat(),
                                    " / ".join(notes) or machine_note()))
    if partial:
        lines.append("")
        lines.append("**Partial run**: the data sets not listed had not finished.")
    md5s = [m for ds in done for m in results[ds].get("library_md5", [])]
    if len(set(md5s)) > 1:
        lines.append("")
        lines.append("**Warning**: the installed textclf.so changed during the run "
                     "(md5 per data set, start/end: %s); the textclf figures "
                     "mix builds." % "; ".join(
                         "%s %s" % (ds, "/".join(m[:8] for m in results[ds]["library_md5"]))
                         for ds in done if "library_md5" in results[ds]))
    lines.append("")
    lines.append("Test accuracy in percent, mean ± sample standard deviation over "
                 "%d seed%s (%s); textclf and PyTorch train for %d epochs with the "
                 "same tokens, architecture and optimiser, from the same initial "
                 "weights, visiting the rows in the same order (paired runs)."
                 % (len(seeds), "s" if len(seeds) > 1 else "",
                    ", ".join(map(str, seeds)), args.epochs))
    lines.append("")
    E = args.epochs
    lines.append("| dataset | train / test rows | textclf (%d epochs) | PyTorch (%d epochs) "
                 "| difference (points) | textclf ≥ PyTorch − 0.5 | textclf defaults "
                 "(epochs run) | defaults ≥ PyTorch | fastText | TF-IDF + LR |" % (E, E))
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for ds in done:
        res = results[ds]
        s = summarize(res)
        lines.append("| %s | %d / %d | %s ± %s | %s ± %s | %+.2f | %s | %s ± %s (%s) | %s | %s | %s |" % (
            ds, res["rows"]["train"], res["rows"]["test"],
            pct(s["fixed"][0]), pct(s["fixed"][1]),
            pct(s["pytorch"][0]), pct(s["pytorch"][1]), s["diff"],
            "PASS" if s["pass_fixed"] else "**FAIL**",
            pct(s["default"][0]), pct(s["default"][1]),
            ",".join(map(str, s["epochs_run"])),
            "PASS" if s["pass_default"] else "**FAIL**",
            pct(s["fasttext"][0]), pct(s["tfidf"])))
    lines.append("")
    lines.append("Pairing check, first-epoch training loss of the fixed-epoch runs "
                 "(textclf / PyTorch, per seed): " + "; ".join(
                     "%s %s" % (ds, ", ".join(
                         "%.4f/%.4f" % (r["textclf_fixed"]["epoch_losses"][0],
                                        r["pytorch"]["epoch_losses"][0])
                         for r in results[ds]["runs"]
                         if r["textclf_fixed"].get("epoch_losses")
                         and r["pytorch"].get("epoch_losses")))
                     for ds in done) + ".")
    lines.append("")
    lines.append("Training wall time in seconds (mean per seed; one thread each; "
                 "textclf as reported by train_classifier, PyTorch the training "
                 "loop only):")
    lines.append("")
    lines.append("| dataset | textclf (%d epochs) | PyTorch (%d epochs) | textclf defaults "
                 "| fastText | TF-IDF + LR | whole data set |" % (E, E))
    lines.append("|---|---|---|---|---|---|---|")
    for ds in done:
        res = results[ds]
        runs = res["runs"]

        def ms(key):
            return statistics.mean(r[key]["seconds"] for r in runs)
        lines.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |" % (
            ds, ms("textclf_fixed"), ms("pytorch"), ms("textclf_default"),
            ms("fasttext"), res["tfidf_lr"]["seconds"], res["wall_seconds"]))
    if "imdb" in results and "val_curve" in results["imdb"]:
        c = results["imdb"]["val_curve"]
        lines.append("")
        lines.append("IMDB validation loss per epoch (10%% held out, seed %d; "
                     "[plot](img/imdb_val_loss.svg)):" % c["seed"])
        lines.append("")
        lines.append("| epoch | " + " | ".join(str(r["epoch"]) for r in c["textclf"]) + " |")
        lines.append("|---|" + "---|" * len(c["textclf"]))
        lines.append("| textclf | " + " | ".join("%.4f" % r["validation_loss"]
                                                 for r in c["textclf"]) + " |")
        lines.append("| PyTorch | " + " | ".join("%.4f" % r["validation_loss"]
                                                 for r in c["pytorch"]) + " |")
    return "\n".join(lines) + "\n"


def machine_note():
    """CPU, cores, and the versions of everything compared."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "?"
    try:
        import sklearn
        sv = sklearn.__version__
    except ImportError:
        sv = "?"
    fv = "?"
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "fasttext"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout
        fv = out.strip() or "?"
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
                                "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True).stdout.strip()
        commit = (commit + ("+changes" if dirty else "")) or "?"
    except OSError:
        commit = "?"
    return ("%s, %d cores, %s; textclf at %s, PostgreSQL 15, torch %s, "
            "scikit-learn %s, fastText %s (Debian)." % (
                cpu, os.cpu_count() or 0, platform.platform(terse=True),
                commit, tv, sv, fv))


def write_doc(block, path=DOC_PATH):
    """Replace the marked block of docs/accuracy.md (create it if needed)."""
    body = BEGIN_MARK + "\n" + block + END_MARK + "\n"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if BEGIN_MARK in text and END_MARK in text:
            a = text.index(BEGIN_MARK)
            b = text.index(END_MARK) + len(END_MARK)
            if text[b:b + 1] == "\n":
                b += 1
            text = text[:a] + body + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n## Results\n\n" + body
    else:
        text = "# Accuracy\n\n## Results\n\n" + body
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# glibc returns large freed blocks to the kernel at once, so PyTorch's
# per-step temporaries (a few hundred KB each) are page-faulted afresh on
# every allocation; on small VMs that doubles the training time.  Keeping
# freed memory in the heap changes no result, only the speed.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824",
              "MALLOC_TRIM_THRESHOLD_": "1073741824",
              "MALLOC_TOP_PAD_": "268435456"}


def exit_status(results, partial):
    """0 when every data set was measured and meets both targets, else 1."""
    ok = all(summarize(r)["pass_fixed"] and summarize(r)["pass_default"]
             for r in results.values())
    return 0 if ok and not partial else 1


def run_jobs(args, datasets, seeds):
    """--jobs N: the data sets in N groups, each group a child process of
    this script with its own cluster and JSON file; then one report."""
    groups = [[] for _ in range(min(args.jobs, len(datasets)))]
    # the longest (imdb) alone in the first group, the rest round-robin
    rest = [d for d in datasets if d != "imdb"]
    if "imdb" in datasets:
        groups[0].append("imdb")
        others = groups[1:] or groups
    else:
        others = groups
    for i, d in enumerate(rest):
        others[i % len(others)].append(d)
    groups = [g for g in groups if g]
    t0 = time.time()
    procs = []
    for i, g in enumerate(groups):
        cmd = [sys.executable, os.path.abspath(__file__), "--datasets", ",".join(g),
               "--seeds", str(len(seeds)), "--first-seed", str(seeds[0]),
               "--epochs", str(args.epochs),
               "--no-docs", "--json", "%s.job%d" % (args.json, i),
               "--pgroot", "%s-job%d" % (args.pgroot, i), "--dbname", args.dbname,
               "--plot-epochs", str(args.plot_epochs)]
        if not args.plot:
            cmd.append("--no-plot")
        if args.max_train:
            cmd += ["--max-train", str(args.max_train)]
        if args.max_test:
            cmd += ["--max-test", str(args.max_test)]
        log("job %d: %s" % (i, ",".join(g)))
        procs.append(subprocess.Popen(cmd))
    codes = [p.wait() for p in procs]
    results = {}
    for i in range(len(groups)):
        path = "%s.job%d" % (args.json, i)
        if os.path.exists(path):
            with open(path) as f:
                results.update(json.load(f))
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    partial = len(results) < len(datasets)
    block = render(results, args, seeds, partial)
    if args.docs:
        write_doc(block)
    print(block)
    log("total %.0f s (%d jobs)" % (time.time() - t0, len(groups)))
    if any(c not in (0, 1) for c in codes):
        return 2
    return exit_status(results, partial)


def main():
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.environ.update(MALLOC_ENV)
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)]
                 + sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[2].strip())
    ap.add_argument("--datasets", default=None,
                    help="comma-separated, from %s (default all)" % ",".join(ALL_DATASETS))
    ap.add_argument("--seeds", type=int, default=None,
                    help="number of seeds, 1..N unless --first-seed (default 3; --quick 1)")
    ap.add_argument("--first-seed", type=int, default=1,
                    help="start the seeds here: S..S+N-1 (default 1), e.g. to "
                         "add seeds to an earlier run, or to run two seed "
                         "ranges side by side (each with its own --pgroot)")
    ap.add_argument("--epochs", type=int, default=3,
                    help="fixed epochs of textclf and PyTorch (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 seed, sms_spam + ag_news, at most 2000 "
                         "train / 1000 test rows, no docs")
    ap.add_argument("--max-train", type=int, default=None,
                    help="train rows kept per data set (a fixed pseudo-random subset)")
    ap.add_argument("--max-test", type=int, default=None, help="test rows kept")
    ap.add_argument("--plot", dest="plot", action="store_true", default=True,
                    help="with imdb: the validation-loss plot (default on)")
    ap.add_argument("--no-plot", dest="plot", action="store_false")
    ap.add_argument("--plot-epochs", type=int, default=6)
    ap.add_argument("--write-docs", dest="docs", action="store_true", default=None,
                    help="write the table into docs/accuracy.md (default: unless --quick)")
    ap.add_argument("--no-docs", dest="docs", action="store_false")
    ap.add_argument("--pgroot", default=os.environ.get("TEXTCLF_BENCH_PGROOT",
                                                       "/tmp/textclf-bench-pg"),
                    help="the private cluster's folder (TEXTCLF_PGROOT of "
                         "tools/pgcluster.sh; default /tmp/textclf-bench-pg)")
    ap.add_argument("--dbname", default="textclf_bench")
    ap.add_argument("--keep-cluster", action="store_true",
                    help="leave the cluster running at the end")
    ap.add_argument("--json", default="/tmp/textclf_accuracy.json",
                    help="raw results, rewritten after every data set")
    ap.add_argument("--from-json", metavar="FILE[,FILE...]",
                    help="measure nothing: merge the results saved by earlier "
                         "runs (--json) and print (and write) the report")
    ap.add_argument("--jobs", type=int, default=1,
                    help="data sets measured N at a time, each group in its own "
                         "process and cluster (imdb, the longest, alone); every "
                         "side still trains on one thread, so the accuracies "
                         "do not change, only the wall times share the cores")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.quick:
        datasets = QUICK_DATASETS
        nseeds = 1
        args.max_train = args.max_train or 2000
        args.max_test = args.max_test or 1000
        if args.docs is None:
            args.docs = False
    else:
        datasets = ALL_DATASETS
        nseeds = 3
    if args.datasets:
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        bad = [d for d in datasets if d not in ALL_DATASETS]
        if bad:
            ap.error("unknown data set(s): %s" % ",".join(bad))
    if args.seeds is not None:
        nseeds = args.seeds
    if args.docs is None:
        args.docs = True
    if args.first_seed < 0:
        ap.error("--first-seed must be 0 or more")
    seeds = list(range(args.first_seed, args.first_seed + nseeds))
    datasets = [d for d in RUN_ORDER if d in datasets]

    if args.from_json:
        results = {}
        for path in args.from_json.split(","):
            with open(path) as f:
                results.update(json.load(f))
        seeds = results[next(iter(results))]["seeds"] if results else seeds
        args.epochs = results[next(iter(results))]["epochs"] if results else args.epochs
        args.argv = ["--jobs", "2"]     # the command that measures all of it
        partial = any(ds not in results for ds in ALL_DATASETS)
        block = render(results, args, seeds, partial)
        if args.docs:
            write_doc(block)
        print(block)
        return exit_status(results, partial)
    if args.jobs > 1 and len(datasets) > 1:
        return run_jobs(args, datasets, seeds)

    torch = torch_setup()
    import numpy as np

    t0 = time.time()
    log("cluster %s, datasets %s, seeds %s, %d epochs"
        % (args.pgroot, ",".join(datasets), seeds, args.epochs))
    pg = Pg(args.pgroot, args.dbname)
    results = {}
    try:
        pg.fresh_database()
        for ds in datasets:
            results[ds] = bench_dataset(pg, ds, args, seeds, torch, np)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
            partial = len(results) < len(datasets)
            block = render(results, args, seeds, partial)
            if args.docs:
                write_doc(block)
            log("%s done in %.0f s" % (ds, results[ds]["wall_seconds"]))
    finally:
        if not args.keep_cluster:
            pg.stop()
    print(render(results, args, seeds, False))
    log("total %.0f s" % (time.time() - t0))
    return exit_status(results, False)


if __name__ == "__main__":
    sys.exit(main())
