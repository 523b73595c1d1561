# 040_mutation.pl
#	  SQL-level mutation test of everything that parses untrusted input:
#	  classifier_in (base64 text), the bytea cast and classifier_recv (COPY
#	  ... FORMAT binary) with randomly mutated classifier values, and
#	  train_classifier with random option documents.  Each input must be
#	  accepted or rejected with a clean ERROR whose SQLSTATE is not XX000
#	  (internal error), and the server must stay up: SELECT 1 works after
#	  every batch and the log has no "terminated by signal".
#
#	  The values are mutations of two tiny trained models (a 3-class word
#	  model and a 2-class char model with an OOV token, each under 1 kB):
#	    - text: the base64 text with characters flipped, inserted, deleted,
#	      truncated or duplicated (mostly stopped by base64 or the checksum);
#	    - bytes: the decoded bytes with bytes flipped, set to interesting
#	      values (0, 0xFF, 0x7FFFFFFF, 0x80000000, NaN/Inf floats) in the
#	      header and config or anywhere, inserted, deleted or truncated, and
#	      then the content id and checksum recomputed (FNV-1a 64 +
#	      splitmix64 finaliser, as tc_hash64 in src/core/format.c) so that
#	      the mutation reaches the parser; each is fed through the bytea
#	      cast and as base64 text through classifier_in, and a subset through
#	      COPY FORMAT binary (classifier_recv).
#	  An accepted value is then used: predict, predict_proba, classifier_info,
#	  classifier_labels, and a text round trip.
#	  A tiny value that declares a 2,000,000 x 1024 embedding must be
#	  rejected at once (the reader checks counts against the bytes present).
#
#	  Everything runs in PL/pgSQL DO blocks that loop over the generated
#	  inputs (loaded with COPY) and record each SQLSTATE in a table.
#	  The random generator is seeded (TEXTCLF_MUTATION_SEED, default 40), so
#	  a failure is reproducible; TEXTCLF_MUTATIONS sets the number of byte
#	  and text mutations (default 3000 in all).

use strict;
use warnings;
no warnings 'portable';    # 64-bit hex constants of the hash
use utf8;

use FindBin;
use lib $FindBin::RealBin;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TextclfTap;

my $seed = $ENV{TEXTCLF_MUTATION_SEED} // 40;
my $nmut = $ENV{TEXTCLF_MUTATIONS} // 3000;
srand($seed);
note "seed $seed, $nmut mutations";

my $node = textclf_node('mutation');
my $dir = PostgreSQL::Test::Utils::tempdir;

# ---- the hash of the model format (tc_hash64) ----

# a * b mod 2^64 (as a signed integer: Perl's ^ and >> outside "use
# integer" treat it as the unsigned value of the same bits)
sub mul64
{
	use integer;
	return $_[0] * $_[1];
}

# FNV-1a 64 over $bytes, then the splitmix64 finaliser
sub hash64
{
	my ($bytes) = @_;
	my $h = 0xcbf29ce484222325;
	for my $c (unpack('C*', $bytes))
	{
		$h = mul64($h ^ $c, 0x00000100000001b3);
	}
	$h ^= $h >> 30;
	$h = mul64($h, 0xbf58476d1ce4e5b9);
	$h ^= $h >> 27;
	$h = mul64($h, 0x94d049bb133111eb);
	$h ^= $h >> 31;
	return $h;
}

# recompute the content id (bytes [24, n-8)) and the checksum ([0, n-8))
sub fix_hashes
{
	my ($b) = @_;
	my $n = length($b);
	return $b if $n < 32;
	substr($b, 16, 8) = pack('Q<', hash64(substr($b, 24, $n - 32)));
	substr($b, $n - 8, 8) = pack('Q<', hash64(substr($b, 0, $n - 8)));
	return $b;
}

# ---- two tiny models ----

$node->safe_psql('postgres', q{
	SET textclf.progress = off;
	CREATE TABLE tiny (body text, label text);
	INSERT INTO tiny
	SELECT (ARRAY['good fine nice', 'bad awful poor', 'meh so so', 'great fine', 'poor bad'])[1 + i % 5]
	       || ' w' || (i % 7), (ARRAY['pos', 'neg', 'mid', 'pos', 'neg'])[1 + i % 5]
	  FROM generate_series(1, 30) i;
	CREATE TABLE tiny2 AS SELECT body, CASE WHEN label = 'pos' THEN 'pos' ELSE 'neg' END AS label FROM tiny;
	SELECT version FROM train_classifier('mut_word', 'tiny', 'body', 'label',
		'{"epochs": 1, "vocab_size": 12, "embedding_dim": 2, "hidden_size": 2, "max_len": 6, "seed": 1}');
	SELECT version FROM train_classifier('mut_char', 'tiny2', 'body', 'label',
		'{"epochs": 1, "vocab_size": 10, "embedding_dim": 2, "hidden_size": 3, "max_len": 8, "seed": 2,
		  "tokenizer": "char", "oov_token": true, "lowercase": false}');
});
my @bases;
for my $m ('mut_word', 'mut_char')
{
	my $hex = $node->safe_psql('postgres',
		"SELECT encode(model::bytea, 'hex') FROM textclf.models WHERE model_name = '$m'");
	push @bases, pack('H*', $hex);
}
note 'base models: ' . join(', ', map { length($_) . ' bytes' } @bases);
for my $b (@bases)
{
	is(fix_hashes($b), $b, 'the Perl hash64 reproduces the content id and checksum');
}

# ---- mutations ----

my @b64chars = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '+', '/', '=');
my @junkchars = (' ', "\n", "\t", '!', '-', '_', '\\', '"', "'", 'é', '€', '😀', '%', '.');

# a random character for a base64 text mutation
sub rand_char
{
	return rand() < 0.8 ? $b64chars[int(rand(@b64chars))] : $junkchars[int(rand(@junkchars))];
}

# a text mutation of base64 string $s
sub mutate_text
{
	my ($s) = @_;
	my $ops = 1 + int(rand(3));
	for (1 .. $ops)
	{
		my $n = length($s);
		my $op = int(rand(7));
		my $p = $n ? int(rand($n)) : 0;
		if ($op == 0 && $n) { substr($s, $p, 1) = rand_char(); }
		elsif ($op == 1) { substr($s, $p, 0) = rand_char(); }
		elsif ($op == 2 && $n) { substr($s, $p, 1 + int(rand(4))) = ''; }
		elsif ($op == 3) { $s = substr($s, 0, $p); }
		elsif ($op == 4 && $n) { substr($s, $p, 0) = substr($s, int(rand($n)), int(rand(16))); }
		elsif ($op == 5) { substr($s, $p, 0) = ' ' x (1 + int(rand(3))); }
		else { substr($s, $p, 1) = '=' if $n; }
	}
	return $s;
}

my @interesting32 = (0, 1, 2, 3, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
	1000, 1001, 1024, 1025, 2048, 2049, 10000, 10001, 2000000, 2000001, 4096);
my @special_floats = (pack('f<', 9**9**9), pack('f<', -9**9**9), pack('L<', 0x7FC00000),
	pack('L<', 0xFFFFFFFF), pack('f<', 3.4e38), pack('L<', 1));

# a byte mutation of blob $b (hashes not yet fixed)
sub mutate_bytes
{
	my ($b) = @_;
	my $ops = 1 + int(rand(3));
	for (1 .. $ops)
	{
		my $n = length($b);
		last if $n == 0;
		my $op = int(rand(9));
		# half of the positions in the header, config and labels
		my $p = rand() < 0.5 ? int(rand($n < 120 ? $n : 120)) : int(rand($n));
		if ($op == 0) { substr($b, $p, 1) = chr(ord(substr($b, $p, 1)) ^ (1 << int(rand(8)))); }
		elsif ($op == 1) { substr($b, $p, 1) = chr(int(rand(256))); }
		elsif ($op == 2 && $p + 4 <= $n)
		{
			# a 4-byte field, aligned to the config's u32 grid when in it
			$p = 24 + 4 * int(rand(7)) if rand() < 0.5 && $n > 56;
			substr($b, $p, 4) = pack('L<', $interesting32[int(rand(@interesting32))]);
		}
		elsif ($op == 3 && $p + 4 <= $n) { substr($b, $p, 4) = $special_floats[int(rand(@special_floats))]; }
		elsif ($op == 4) { substr($b, $p, 0) = chr(int(rand(256))) x (1 + int(rand(8))); }
		elsif ($op == 5) { substr($b, $p, 1 + int(rand(8))) = ''; }
		elsif ($op == 6) { $b = substr($b, 0, $p); }
		elsif ($op == 7 && $p + 8 <= $n) { substr($b, $p, 8) = pack('Q<', (1 << int(rand(64))) - int(rand(2))); }
		else { substr($b, $p, 0) = substr($b, int(rand($n)), int(rand(32))); }
	}
	return $b;
}

# rows of (id, kind, text, hex): kind "text" goes through classifier_in,
# "bytea" through the bytea cast
my @rows;
my @recv;    # blobs for COPY FORMAT binary
my $ntext = int($nmut / 3);
my $nbytes = $nmut - $ntext;
for my $i (1 .. $ntext)
{
	my $b = $bases[$i % 2];
	push @rows, ['text', mutate_text(encode_base64($b, '')), undef];
}
for my $i (1 .. $nbytes)
{
	my $b = mutate_bytes($bases[$i % 2]);
	$b = fix_hashes($b) if rand() < 0.9;
	# alternate between the bytea cast and base64 text through classifier_in
	if ($i % 2) { push @rows, ['bytea', undef, unpack('H*', $b)]; }
	else { push @rows, ['text', encode_base64($b, ''), undef]; }
	push @recv, $b if $i % 10 == 0;
}

# the issue's example: a tiny value declaring a 2,000,000 x 1024 embedding
my @huge;
for my $b (@bases)
{
	my $h = $b;
	substr($h, 24, 4) = pack('L<', 2000000);
	substr($h, 32, 4) = pack('L<', 1024);
	push @huge, fix_hashes($h);
}

# COPY text format escaping of one field
sub copy_field
{
	my ($v) = @_;
	return '\N' unless defined $v;
	$v =~ s/\\/\\\\/g;
	$v =~ s/\n/\\n/g;
	$v =~ s/\r/\\r/g;
	$v =~ s/\t/\\t/g;
	return $v;
}

my $vals = "$dir/values.tsv";
open(my $fh, '>:raw', $vals) or die "cannot write $vals: $!";
my $id = 0;
for my $r (@rows)
{
	$id++;
	my $txt = $r->[1];
	utf8::encode($txt) if defined $txt;
	print $fh join("\t", $id, $r->[0], copy_field($txt), copy_field($r->[2])), "\n";
}
close($fh);

$node->safe_psql('postgres', qq{
	CREATE TABLE mut_values (id int PRIMARY KEY, kind text, txt text, hex text);
	COPY mut_values FROM '$vals';
	CREATE TABLE mut_results (id int, kind text, sqlstate text, message text);
});

# classify one batch of mut_values in a DO block
sub run_values_batch
{
	my ($lo, $hi) = @_;
	return $node->psql('postgres', qq{
	SET textclf.progress = off;
	DO \$\$
	DECLARE
		r record;
		c classifier;
	BEGIN
		FOR r IN SELECT * FROM mut_values WHERE id BETWEEN $lo AND $hi ORDER BY id LOOP
			BEGIN
				IF r.kind = 'text' THEN
					c := r.txt::classifier;
				ELSE
					c := decode(r.hex, 'hex')::classifier;
				END IF;
				PERFORM predict(c, 'good fine w1 bad'), predict_proba(c, 'meh x'),
						classifier_info(c), classifier_labels(c), classifier_content_id(c),
						predict(c, ''), c::text::classifier;
				INSERT INTO mut_results VALUES (r.id, r.kind, 'accepted', NULL);
			EXCEPTION WHEN others THEN
				INSERT INTO mut_results VALUES (r.id, r.kind, SQLSTATE, SQLERRM);
			END;
		END LOOP;
	END
	\$\$;
	});
}

# the server is up and the log shows no crash
my $log_ok = 1;
sub server_alive
{
	my ($what) = @_;
	my ($rc, $out) = $node->psql('postgres', 'SELECT 1');
	my $log = slurp_file($node->logfile);
	my $crashed = $log =~ /terminated by signal|server process .* was terminated|PANIC/;
	$log_ok = 0 if $crashed;
	return $rc == 0 && $out eq '1' && !$crashed;
}

my $t0 = time;
my $batch = 500;
my $nbatches = 0;
my $alive = 1;
for (my $lo = 1; $lo <= $id; $lo += $batch)
{
	my $rc = run_values_batch($lo, $lo + $batch - 1);
	$nbatches++;
	if ($rc != 0 || !server_alive("values $lo"))
	{
		$alive = 0;
		diag "batch of values from $lo failed (psql status $rc)";
	}
}
ok($alive, "server stayed up through $nbatches batches of mutated values");
my $secs = time - $t0;

# ---- classifier_recv: COPY ... FORMAT binary, one file per value ----

# a PGCOPY binary file holding one row with one field $b
sub write_pgcopy
{
	my ($path, $b) = @_;
	open(my $f, '>:raw', $path) or die "cannot write $path: $!";
	print $f "PGCOPY\n\377\r\n\0", pack('N', 0), pack('N', 0),
	  pack('n', 1), pack('N', length($b)), $b, pack('n', 0xFFFF);
	close($f);
}
my @recv_all = (@recv, @huge, @bases);
for my $i (0 .. $#recv_all)
{
	write_pgcopy("$dir/recv$i.bin", $recv_all[$i]);
}
my $nrecv = scalar(@recv_all);
my ($rc_recv) = $node->psql('postgres', qq{
	CREATE TABLE mut_recv (c classifier);
	CREATE TABLE mut_recv_results (i int, sqlstate text, message text);
	DO \$\$
	BEGIN
		FOR i IN 0 .. $nrecv - 1 LOOP
			BEGIN
				EXECUTE format('COPY mut_recv (c) FROM %L (FORMAT binary)', '$dir/recv' || i || '.bin');
				INSERT INTO mut_recv_results VALUES (i, 'accepted', NULL);
			EXCEPTION WHEN others THEN
				INSERT INTO mut_recv_results VALUES (i, SQLSTATE, SQLERRM);
			END;
		END LOOP;
	END
	\$\$;
});
is($rc_recv, 0, "COPY FORMAT binary of $nrecv values ran");
ok(server_alive('recv'), 'server up after classifier_recv');
is($node->safe_psql('postgres',
		'SELECT count(*) FROM mut_recv_results WHERE i >= ' . ($nrecv - 2) . " AND sqlstate = 'accepted'"),
	'2', 'the unmodified models are accepted by classifier_recv');

# ---- the huge declaration fails fast, on every path ----

for my $k (0 .. $#huge)
{
	my $hex = unpack('H*', $huge[$k]);
	my $b64 = encode_base64($huge[$k], '');
	for my $q ("decode('$hex', 'hex')::classifier", "'$b64'::classifier")
	{
		# time it in the server: sqlstate and milliseconds
		my $notice;
		$node->psql('postgres', qq{
		DO \$\$
		DECLARE
			t0 timestamptz := clock_timestamp();
			c classifier;
		BEGIN
			BEGIN
				c := $q;
				RAISE NOTICE 'accepted %', extract(epoch FROM clock_timestamp() - t0) * 1000;
			EXCEPTION WHEN others THEN
				RAISE NOTICE '% %', SQLSTATE, extract(epoch FROM clock_timestamp() - t0) * 1000;
			END;
		END
		\$\$;
		}, stderr => \$notice);
		my ($state, $ms) = $notice =~ /NOTICE:\s+(\S+) ([0-9.]+)/;
		ok(defined $state && $state ne 'accepted' && $state ne 'XX000' && $ms < 1000,
			sprintf('a %d-byte value declaring 2,000,000 x 1024 is refused in %.1f ms (%s)',
				length($huge[$k]), $ms // -1, $state // 'no error'));
	}
}
my $huge_recv = $node->safe_psql('postgres',
	'SELECT string_agg(sqlstate, \',\') FROM mut_recv_results WHERE i BETWEEN '
	  . scalar(@recv) . ' AND ' . (scalar(@recv) + $#huge));
unlike($huge_recv, qr/accepted|XX000/, "classifier_recv refuses them too ($huge_recv)");

# ---- random option documents into train_classifier ----

my @keys = qw(epochs batch_size max_len vocab_size embedding_dim hidden_size
  learning_rate validation_fraction seed threads patience clip_norm dropout
  ema_momentum tokenizer lowercase oov_token threshold class_weight beta1 beta2
  epsilon deploy deploy_metric warm_start);
my @junk_keys = ('', 'Epochs', 'epochs ', 'vocab', 'unknown', "\x{e9}t\x{e9}", 'a"b', 'x\\y',
	'class_weights', 'lr', '0', 'null');

# a random JSON value (text), depth-limited
sub rand_json
{
	my ($depth) = @_;
	my @scalars = ('0', '1', '2', '-1', '3', '0.5', '1.5', '0.0001', '1e-12', '0.999999',
		'1e308', '-1e308', '1e1000', '-1e-1000', '1e-400', '123456789012345678901234567890',
		'9223372036854775807', '9223372036854775808', '18446744073709551616', '2147483648',
		'4096', '4097', '1000', '10000', '10001', '2000000', '2048', '1024', '64', '65',
		'true', 'false', 'null', '""', '"word"', '"char"', '"balanced"', '"always"',
		'"never"', '"if_better"', '"accuracy"', '"log_loss"', '"NaN"', '"Infinity"',
		'"-Infinity"', '"1"', '"pos"', '" "', '"\\u0000"', '"\\ud800"', '-0', '0.1', '0.9');
	my $r = rand();
	if ($depth < 3 && $r < 0.06)
	{
		return '[' . join(', ', map { rand_json($depth + 1) } 1 .. int(rand(4))) . ']';
	}
	if ($depth < 3 && $r < 0.14)
	{
		my @labels = ('"pos"', '"neg"', '"mid"', '"x"', '""');
		return '{' . join(', ', map {
			(rand() < 0.7 ? $labels[int(rand(@labels))] : '"' . $keys[int(rand(@keys))] . '"')
			  . ': ' . rand_json($depth + 1) } 1 .. int(rand(4))) . '}';
	}
	return $scalars[int(rand(@scalars))];
}

# keys whose valid values make training slow: keep those small or invalid
my %cheap = (epochs => ['1', '2', '0', '-1', '10001', '1.5', '"2"', 'null', '1e1000'],
	hidden_size => ['1', '2', '8', '0', '2049', '-3', '1e10', '"8"', 'true', '2.5'],
	max_len => ['1', '5', '0', '10001', '-1', '1e30', '[]', '"5"'],
	batch_size => ['1', '7', '0', '4097', '-2', '1e20', '{}', '"7"'],
	patience => ['0', '1', '10001', '-1', '"1"', 'false']);

my @docs;
for my $i (1 .. 600)
{
	my @parts;
	my $nkeys = int(rand(6));
	for (1 .. $nkeys)
	{
		my $k = rand() < 0.85 ? $keys[int(rand(@keys))] : $junk_keys[int(rand(@junk_keys))];
		my $v = exists $cheap{$k} ? $cheap{$k}[int(rand(@{ $cheap{$k} }))] : rand_json(0);
		(my $qk = $k) =~ s/(["\\])/\\$1/g;
		push @parts, "\"$qk\": $v";
	}
	my $doc = '{' . join(', ', @parts) . '}';
	# a few documents that are not objects, or not JSON at all
	$doc = rand_json(0) if $i % 50 == 0;
	$doc = '{"epochs": ' if $i % 97 == 0;
	push @docs, $doc;
}
my $docs = "$dir/docs.tsv";
open(my $dh, '>:raw', $docs) or die;
for my $i (0 .. $#docs)
{
	my $d = $docs[$i];
	utf8::encode($d);
	print $dh ($i + 1), "\t", copy_field($d), "\n";
}
close($dh);

$node->safe_psql('postgres', qq{
	CREATE TABLE mut_docs (id int, doc text);
	COPY mut_docs FROM '$docs';
	CREATE TABLE mut_doc_results (id int, sqlstate text, message text);
});
my $t1 = time;
my $docs_alive = 1;
for (my $lo = 1; $lo <= @docs; $lo += 100)
{
	my $hi = $lo + 99;
	my ($rc) = $node->psql('postgres', qq{
	SET textclf.progress = off;
	SET client_min_messages = warning;
	SET statement_timeout = '10min';
	-- random sizes may be legal and large: keep each model small (this
	-- also sends some documents into the memory limit)
	SET textclf.max_model_memory = '64MB';
	DO \$\$
	DECLARE
		r record;
	BEGIN
		FOR r IN SELECT * FROM mut_docs WHERE id BETWEEN $lo AND $hi ORDER BY id LOOP
			BEGIN
				PERFORM train_classifier('mut_opt', 'tiny', 'body', 'label', r.doc::jsonb);
				INSERT INTO mut_doc_results VALUES (r.id, 'accepted', NULL);
			EXCEPTION WHEN others THEN
				INSERT INTO mut_doc_results VALUES (r.id, SQLSTATE, SQLERRM);
			END;
		END LOOP;
	END
	\$\$;
	});
	if ($rc != 0 || !server_alive("docs $lo"))
	{
		$docs_alive = 0;
		diag "batch of option documents from $lo failed (psql status $rc)";
	}
}
ok($docs_alive, 'server stayed up through the option documents');
my $secs_docs = time - $t1;

# ---- results ----

my $total_values = $node->safe_psql('postgres', 'SELECT count(*) FROM mut_results');
is($total_values, scalar(@rows), 'every mutated value was tried');
my $ndocs = $node->safe_psql('postgres', 'SELECT count(*) FROM mut_doc_results');
is($ndocs, scalar(@docs), 'every option document was tried');

for my $t (['mut_results', 'mutated values'], ['mut_recv_results', 'classifier_recv values'],
	['mut_doc_results', 'option documents'])
{
	my $summary = $node->safe_psql('postgres',
		"SELECT string_agg(sqlstate || ' ' || n, ', ' ORDER BY n DESC) FROM "
		  . "(SELECT sqlstate, count(*) AS n FROM $t->[0] GROUP BY 1) s");
	note "$t->[1]: $summary";
	my $internal = $node->safe_psql('postgres',
		"SELECT count(*) FROM $t->[0] WHERE sqlstate = 'XX000' OR sqlstate LIKE 'XX%' OR sqlstate LIKE '58%'");
	is($internal, '0', "$t->[1]: no internal error (XX000) or system error ($summary)");
	if ($internal ne '0')
	{
		diag $node->safe_psql('postgres',
			"SELECT string_agg(sqlstate || ': ' || message, E'\\n') FROM "
			  . "(SELECT * FROM $t->[0] WHERE sqlstate LIKE 'XX%' OR sqlstate LIKE '58%' LIMIT 10) s");
	}
}
my $accepted_bytes = $node->safe_psql('postgres',
	"SELECT count(*) FROM mut_results r JOIN mut_values v USING (id) "
	  . "WHERE r.sqlstate = 'accepted'");
my $accepted_docs = $node->safe_psql('postgres',
	"SELECT count(*) FROM mut_doc_results WHERE sqlstate = 'accepted'");
cmp_ok($accepted_docs, '>', 0, "some option documents train ($accepted_docs)");
ok($log_ok, 'the server log shows no crash');

my $ntried = scalar(@rows) + $nrecv + 2 * scalar(@huge);
note sprintf('%d mutated values (%d text, %d bytea, %d recv) in %.1f s, %d accepted; '
	  . '%d option documents in %.1f s, %d accepted',
	$ntried, scalar(grep { $_->[0] eq 'text' } @rows), scalar(grep { $_->[0] eq 'bytea' } @rows),
	$nrecv, $secs, $accepted_bytes, scalar(@docs), $secs_docs, $accepted_docs);

$node->stop;
done_testing();
