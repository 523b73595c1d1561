#!/usr/bin/python3
"""check_export.py: rebuild a textclf model in NumPy from export_model() and
check that it scores like predict_proba(); then check the import round trip.

    /usr/bin/python3 test/export/check_export.py [--model NAME]
        [--dataset sms_spam] [--rows 1000] [--tolerance 1e-5] [--keep]

Connects with psql (PGHOST, PGPORT, PGUSER, PGDATABASE from the environment;
the database must have the textclf extension).  Without --model it trains a
model on <dataset>_train (a fixed seed, the reference sizes but fewer
epochs) and drops it at the end.  The texts come from <dataset>_test in
$TEXTCLF_DATASETS (default ../shared/datasets beside the checkout).

What is independent of textclf: the whole network, Embedding -> LSTM (Keras
gate order i, f, c, o; sigmoid gates, tanh cell; zero initial state; over
the text's own tokens, no padding) -> Dense -> sigmoid (two classes) or
softmax, computed in float64 from the exported tensors alone.  What is NOT:
tokenization.  The tokens come from textclf's tokenize(model, text) (the
kept tokens, last max_len, OOV shown as "[UNK]") and are mapped to ids
through the exported vocabulary; the tokenizer is tested on its own.

When torch is installed (Debian python3-torch, optional), the PyTorch
modules loaded exactly as docs/export-format.md describes are checked the
same way.

Prints TAP-style "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
Only the standard library and numpy are needed (Debian python3-numpy).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

FAILED = 0


def report(ok, what):
    """Print one ok / not ok line and count failures."""
    global FAILED
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if not ok:
        FAILED += 1


def psql(sql):
    """Run SQL through psql (unaligned, tuples only); return stdout."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
           "-c", "SET extra_float_digits = 3", "-c", sql]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (sql[:200], res.stderr))
    return res.stdout


def lit(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def load_weights(doc):
    """The exported tensors as float64 arrays holding float32 values."""
    w = {}
    for name, value in doc["weights"].items():
        w[name] = np.asarray(value, dtype=np.float64).astype(np.float32) \
            .astype(np.float64)
    return w


def check_document(doc):
    """Keys, shapes and vocabulary ids of an export document."""
    o = doc["options"]
    V, E, H = o["vocab_size"], o["embedding_dim"], o["hidden_size"]
    K = 1 if len(doc["labels"]) == 2 else len(doc["labels"])
    report(doc.get("format") == "textclf-keras" and
           doc.get("format_version") == 1, "document format textclf-keras 1")
    want = {"embedding": (V, E), "lstm/kernel": (E, 4 * H),
            "lstm/recurrent_kernel": (H, 4 * H), "lstm/bias": (4 * H,),
            "dense/kernel": (H, K), "dense/bias": (K,)}
    shapes = {k: np.asarray(v).shape for k, v in doc["weights"].items()}
    report(shapes == want, "tensor shapes %s" % sorted(shapes.items()))
    first = 2 if o["oov_token"] else 1
    ids = sorted(doc["vocabulary"].values())
    report(ids == list(range(first, first + len(ids))) and
           (not ids or ids[-1] < V),
           "vocabulary: %d words with ids %d.. consecutive, below %d"
           % (len(ids), first, V))


def numpy_proba(w, ids, K):
    """Class probabilities of one id sequence, in float64."""
    Wx, Wh, b = w["lstm/kernel"], w["lstm/recurrent_kernel"], w["lstm/bias"]
    H = Wh.shape[0]
    h = np.zeros(H)
    c = np.zeros(H)
    for t in ids:
        z = w["embedding"][t] @ Wx + h @ Wh + b
        i = sigmoid(z[0:H])
        f = sigmoid(z[H:2 * H])
        g = np.tanh(z[2 * H:3 * H])
        o = sigmoid(z[3 * H:4 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
    logits = h @ w["dense/kernel"] + w["dense/bias"]
    if K == 1:
        p = sigmoid(logits[0])
        return np.array([1.0 - p, p])
    e = np.exp(logits - logits.max())
    return e / e.sum()


def torch_model(doc):
    """The PyTorch modules of docs/export-format.md, loaded from doc; None
    when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    o = doc["options"]
    V, E, H = o["vocab_size"], o["embedding_dim"], o["hidden_size"]
    K = 1 if len(doc["labels"]) == 2 else len(doc["labels"])
    w = {k: torch.tensor(np.asarray(v, dtype=np.float32))
         for k, v in doc["weights"].items()}
    emb = torch.nn.Embedding(V, E, padding_idx=0)
    lstm = torch.nn.LSTM(E, H, batch_first=True)
    dense = torch.nn.Linear(H, K)
    with torch.no_grad():
        emb.weight.copy_(w["embedding"])
        lstm.weight_ih_l0.copy_(w["lstm/kernel"].T)
        lstm.weight_hh_l0.copy_(w["lstm/recurrent_kernel"].T)
        lstm.bias_ih_l0.copy_(w["lstm/bias"])
        lstm.bias_hh_l0.zero_()
        dense.weight.copy_(w["dense/kernel"].T)
        dense.bias.copy_(w["dense/bias"])

    def proba(ids):
        with torch.no_grad():
            if ids:
                x = emb(torch.tensor([ids]))
                _, (h, _) = lstm(x)
                h = h[-1, 0]
            else:
                h = torch.zeros(H)
            z = dense(h)
            if K == 1:
                p = torch.sigmoid(z)[0].item()
                return np.array([1.0 - p, p])
            return torch.softmax(z, dim=0).double().numpy()
    return proba


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="an existing model (default: train one)")
    ap.add_argument("--dataset", default="sms_spam")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--keep", action="store_true",
                    help="keep the models and the table created")
    args = ap.parse_args()
    data = os.environ.get("TEXTCLF_DATASETS",
                          os.path.join(repo, "..", "shared", "datasets"))
    test_csv = os.path.join(data, args.dataset + "_test.csv.gz")
    train_csv = os.path.join(data, args.dataset + "_train.csv.gz")
    if not os.path.exists(test_csv):
        report(False, "dataset %s not found" % test_csv)
        return 1

    table = "textclf_export_check"
    model = args.model or "export_check"
    roundtrip = model + "_roundtrip"
    psql("DROP TABLE IF EXISTS %s; CREATE TABLE %s (id serial, body text, "
         "label text)" % (table, table))
    psql("\\copy %s(body, label) FROM PROGRAM %s CSV HEADER"
         % (table, lit("gzip -dc " + test_csv)))
    if not args.model:
        psql("DROP TABLE IF EXISTS %s_train; CREATE TABLE %s_train (body text, "
             "label text)" % (table, table))
        psql("\\copy %s_train(body, label) FROM PROGRAM %s CSV HEADER"
             % (table, lit("gzip -dc " + train_csv)))
        psql("SELECT drop_model(model_name) FROM list_models() "
             "WHERE model_name IN (%s, %s)" % (lit(model), lit(roundtrip)))
        psql("SET textclf.progress = off; SELECT version FROM train_classifier("
             "%s, '%s_train', 'body', 'label', '{\"epochs\": 2, \"seed\": 7, "
             "\"threads\": 1}')" % (lit(model), table))

    doc = json.loads(psql("SELECT export_model(%s)" % lit(model)))
    check_document(doc)
    w = load_weights(doc)
    vocab = doc["vocabulary"]
    oov = doc["options"]["oov_token"]
    K = w["dense/bias"].shape[0]

    rows = psql("SELECT json_build_object('id', id, 'p', predict_proba(%s, body), "
                "'t', tokenize(%s, body)) FROM %s WHERE body IS NOT NULL "
                "ORDER BY id LIMIT %d" % (lit(model), lit(model), table,
                                          args.rows)).splitlines()
    tproba = torch_model(doc)
    worst = 0.0
    tworst = 0.0
    unknown = 0
    for line in rows:
        r = json.loads(line)
        ids = []
        for tok in r["t"]:
            if tok in vocab:
                ids.append(vocab[tok])
            elif tok == "[UNK]" and oov:
                ids.append(1)
            else:
                unknown += 1
        p = numpy_proba(w, ids, K)
        worst = max(worst, float(np.max(np.abs(p - np.asarray(r["p"])))))
        if tproba is not None:
            tp = tproba(ids)
            tworst = max(tworst, float(np.max(np.abs(tp - np.asarray(r["p"])))))
    report(len(rows) == args.rows, "scored %d real texts of %s_test"
           % (len(rows), args.dataset))
    report(unknown == 0, "every token tokenize() keeps is in the exported "
           "vocabulary (%d were not)" % unknown)
    report(worst <= args.tolerance,
           "NumPy float64 rebuild matches predict_proba: max |diff| %.3g <= %g"
           % (worst, args.tolerance))
    if tproba is None:
        print("ok - PyTorch recipe of docs/export-format.md # SKIP torch "
              "is not installed")
    else:
        report(tworst <= args.tolerance,
               "PyTorch (float32) loaded as docs/export-format.md says "
               "matches predict_proba: max |diff| %.3g <= %g"
               % (tworst, args.tolerance))

    # the import round trip: same bytes, same scores, same export
    psql("SELECT drop_model(model_name) FROM list_models() "
         "WHERE model_name = %s" % lit(roundtrip))
    version = psql("SELECT import_model(%s, export_model(%s))"
                   % (lit(roundtrip), lit(model))).strip()
    report(version != "", "import_model(%s, export_model(%s)) gave version %s"
           % (roundtrip, model, version))
    ids = psql("SELECT a.content_id = b.content_id FROM textclf.versions a, "
               "textclf.versions b WHERE a.model_name = %s AND a.deployed "
               "AND b.model_name = %s AND b.deployed"
               % (lit(model), lit(roundtrip))).strip()
    report(ids == "t", "the imported classifier has the original's content id "
           "(byte-identical serialization)")
    diff = psql("SELECT count(*) FROM %s WHERE predict_proba(%s, body) IS "
                "DISTINCT FROM predict_proba(%s, body)"
                % (table, lit(model), lit(roundtrip))).strip()
    report(diff == "0", "predict_proba of the imported model equals the "
           "original's exactly on every row (%s differ)" % diff)
    same = psql("SELECT (export_model(%s) - 'model_name' - 'version') = "
                "(export_model(%s) - 'model_name' - 'version')"
                % (lit(model), lit(roundtrip))).strip()
    report(same == "t", "exporting the imported model gives the same document")

    if not args.keep:
        psql("SELECT drop_model(%s)" % lit(roundtrip))
        if not args.model:
            psql("SELECT drop_model(%s)" % lit(model))
            psql("DROP TABLE %s_train" % table)
        psql("DROP TABLE %s" % table)
    return 1 if FAILED else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a crash is a failure, never a silent pass
        report(False, "check_export.py: %s" % e)
        sys.exit(1)
