# 051_cancel_evaluate.pl
#	  A long evaluate() stops promptly on a query cancel (pg_cancel_backend)
#	  and on statement_timeout, and the session works afterwards.
#
#	  The model is large (max_len 200, hidden size 256: each review costs a
#	  200-step LSTM, several milliseconds) but is trained on a few hundred
#	  SMS only, so that it is quick to build; evaluate() then scores the
#	  25,000 IMDB test reviews, which takes far longer than the test waits.
#	  (With a cancel check per chunk of 1,000 fetched rows instead of per
#	  row, the latency here was several seconds.)
#	  The latency is the time from pg_cancel_backend() (or from the
#	  statement's start plus the timeout) to psql receiving the error; it
#	  must stay under 2 s.  Both calls of evaluate() are cancelled: by model
#	  name and with a classifier value.
#
#	  Does not test the cancel of training (001_cancel.pl does).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TextclfTap;

my $dir = datasets_dir();
plan skip_all => 'imdb_test.csv.gz is not in TEXTCLF_DATASETS'
  unless -r "$dir/imdb_test.csv.gz";

my $node = textclf_node('cancel_evaluate');
load_sms($node, 'postgres', 'sms');
(my $imdb = "$dir/imdb_test.csv.gz") =~ s/'/''/g;
$node->safe_psql('postgres', qq{
	CREATE TABLE imdb (body text, label text, rating int, id text);
	COPY imdb FROM PROGRAM 'gzip -dc ''$imdb''' (FORMAT csv, HEADER);
	-- the SMS model's labels, so that every review is scored
	UPDATE imdb SET label = CASE WHEN rating > 4 THEN 'ham' ELSE 'spam' END;
	CREATE TABLE few AS SELECT * FROM sms ORDER BY body LIMIT 300;
	ANALYZE imdb, few;
});
$node->safe_psql('postgres', q{SELECT train_classifier('big', 'few', 'body', 'label',
	'{"epochs": 1, "validation_fraction": 0, "hidden_size": 256, "max_len": 200}')});
is($node->safe_psql('postgres',
		q{SELECT classifier_info(model)->>'hidden_size' FROM textclf.models WHERE model_name = 'big'}),
	'256', 'the model has hidden size 256');

# how fast evaluate() is here: 100 reviews (the model is cached first)
$node->safe_psql('postgres', q{
	CREATE TABLE imdb100 AS SELECT * FROM imdb ORDER BY id LIMIT 100;
	CREATE TABLE imdb1 AS SELECT * FROM imdb ORDER BY id LIMIT 1;});
my $ses = $node->background_psql('postgres', timeout => 120);
$ses->query_safe(q{SELECT evaluate('big', 'imdb1', 'body', 'label')});
my $t0 = time();
my $small = $ses->query_safe(q{SELECT evaluate('big', 'imdb100', 'body', 'label')->>'rows'});
my $per_row = (time() - $t0) / 100;
$ses->quit;
is($small, '100', 'evaluate() scores 100 reviews');
diag(sprintf('evaluate(): %.2f ms a review here, so the 25,000 reviews take about %.0f s',
		1000 * $per_row, 25000 * $per_row));
cmp_ok(25000 * $per_row, '>', 5, 'evaluating the whole table takes more than 5 s');

my $ctl = $node->background_psql('postgres', timeout => 120);
my @latencies;

# Run $eval in the background, cancel it after $wait s of running, check
# the latency and that the same session then works.
sub cancel_case
{
	my ($what, $eval) = @_;

	my $s = bg_psql($node, 'postgres', "tap_$what", 300, { on_error_stop => 0 },
		$eval, q{SELECT evaluate('big', 'imdb100', 'body', 'label')->>'rows'});
	my $pid = backend_pid($node, "tap_$what");
	ok(poll_sql($node, 'postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE pid = $pid AND state = 'active' AND query LIKE '%evaluate%'}, 't', 60),
		"$what: evaluate() is running");
	sleep(2);		# well inside the loop over the rows
	ok(!bg_poll($s), "$what: evaluate() still runs after 2 s") or diag($s->{err});
	my $t0 = time();
	is($ctl->query_safe("SELECT pg_cancel_backend($pid)"), 't', "$what: pg_cancel_backend");
	my $got = bg_wait($s, 60, qr/canceling statement due to user request/);
	my $latency = defined $got ? time() - $t0 : 999;
	push @latencies, sprintf('%s %.3f s', $what, $latency);
	diag(sprintf('%s: cancel latency (pg_cancel_backend -> error at the client): %.3f s',
			$what, $latency));
	cmp_ok($latency, '<', 2, "$what: the cancel took effect within 2 s");
	bg_finish($s, 120);
	like($s->{err}, qr/ERROR:\s+canceling statement due to user request/,
		"$what: the error is the cancel");
	is($s->{out}, '100', "$what: the same session evaluates again afterwards");
	unlike($s->{err}, qr/WARNING|leak/i, "$what: no warning (leaked resources) in the session");
}

cancel_case('by_name', q{SELECT evaluate('big', 'imdb', 'body', 'label')});
cancel_case('by_value', q{SELECT evaluate(model, 'imdb', 'body', 'label')
	FROM textclf.models WHERE model_name = 'big'});

# ---- statement_timeout ----

my $s = bg_psql($node, 'postgres', 'tap_timeout', 300, { on_error_stop => 0 },
	"SET statement_timeout = '4s'",
	q{SELECT evaluate('big', 'imdb', 'body', 'label')},
	'RESET statement_timeout',
	q{SELECT evaluate('big', 'imdb100', 'body', 'label')->>'rows'});
my $pid = backend_pid($node, 'tap_timeout');
my $qstart = '';
my $t1 = time();
while ($qstart eq '' && time() - $t1 < 30 && !bg_poll($s))
{
	$qstart = $node->safe_psql('postgres', qq{
		SELECT extract(epoch FROM query_start) FROM pg_stat_activity
		WHERE pid = $pid AND state = 'active' AND query LIKE '%evaluate%'});
}
ok($qstart ne '', 'statement_timeout: evaluate() was seen running');
my $w = bg_wait($s, 120, qr/canceling statement due to statement timeout/);
ok(defined $w, 'psql reports "canceling statement due to statement timeout"')
  or diag("stderr: $s->{err}");
my $tlat = ($qstart ne '' ? time() - $qstart : 999) - 4;
push @latencies, sprintf('statement_timeout %.3f s', $tlat);
diag(sprintf('statement_timeout latency (statement start + 4 s -> error at the client): %.3f s',
		$tlat));
cmp_ok($tlat, '<', 2, 'statement_timeout: evaluate() ended within 2 s after its timeout');
cmp_ok($tlat, '>', -0.2, 'statement_timeout: and not before the timeout');
bg_finish($s, 120);
is($s->{out}, '100', 'statement_timeout: the same session evaluates again afterwards');

# nothing was written, and the server and the model are fine
is($node->safe_psql('postgres', 'SELECT count(*) FROM textclf.models'), '1',
	'the registry is unchanged');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_ls_tmpdir()'), '0',
	'no temporary file is left');
$ctl->quit;
diag('evaluate() cancel latencies: ' . join(', ', @latencies));

$node->stop;
done_testing();
