# 003_streaming_memory.pl
#	  train_classifier() streams its input: the backend's anonymous memory
#	  stays bounded (under 512 MB) on 1,000,000 rows, and does not grow with
#	  the row count (1,000,000 rows against 100,000), which it would if the
#	  rows were read with one SPI_execute instead of a cursor.
#
#	  The rows are sms_spam's training texts repeated, with one NULL text and
#	  one NULL label in every 1,000 rows, which training must skip.  The model is
#	  small (hidden_size 8, embedding_dim 8, max_len 20, batch_size 256, one
#	  epoch) so that the 1M-row run takes under a minute on 2 cores; the
#	  memory that depends on the row count does not depend on those sizes.
#	  The test process samples /proc/<backend pid>/status every 0.2 s
#	  (RssAnon: the backend's private heap; VmHWM: its peak resident set,
#	  shared buffers included) and prints the figures.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TextclfTap;

datasets_dir();
my $node = textclf_node('memory');
my $nsms = load_sms($node, 'postgres', 'sms');

# $n rows: row k is sms row k mod N, with NULL text at k = 7 (mod 1000) and
# NULL label at k = 500 (mod 1000)
sub make_table
{
	my ($name, $n) = @_;
	$node->safe_psql('postgres', qq{
		CREATE TABLE $name (body text, label text);
		INSERT INTO $name
			SELECT CASE WHEN k % 1000 = 7 THEN NULL ELSE s.body END,
				   CASE WHEN k % 1000 = 500 THEN NULL ELSE s.label END
			FROM generate_series(1, $n) k
			JOIN smsid s ON s.i = k % $nsms;
		ANALYZE $name;
	});
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM $name WHERE body IS NOT NULL AND label IS NOT NULL");
}

my %limit_rows = (rows_100k => 100_000, rows_1m => 1_000_000);
my $opts = '{"epochs": 1, "max_len": 20, "hidden_size": 8, "embedding_dim": 8, '
  . '"batch_size": 256, "validation_fraction": 0.01}';

# Train on $table in the background and sample the backend's memory;
# returns (baseline RssAnon, peak RssAnon, last VmHWM, seconds, rows).
sub train_sampled
{
	my ($table, $model, $limit) = @_;
	my $app = "tap_mem_$table";
	my $s = bg_psql($node, 'postgres', $app, $limit,
		'SELECT textclf_version(), pg_sleep(1)',
		qq{SELECT train_rows + validation_rows FROM train_classifier('$model',
		   '$table', 'body', 'label', '$opts')});
	my $pid = backend_pid($node, $app);
	my ($base) = proc_mem($pid);
	my $t0 = time();
	my ($peak, $hwm, $n) = sample_until_done($s, $pid, 0.2, $limit);
	my $secs = time() - $t0 - 1;    # less the pg_sleep(1)

	ok(!$s->{timed_out} && $s->{rc} == 0, "training on $table finished")
	  or diag("psql: rc " . ($s->{rc} // 'none') . ", stderr: $s->{err}");
	my $skipped = $limit_rows{$table} / 500;
	like($s->{err}, qr/skipped $skipped rows with a NULL text or label/,
		"$table: the $skipped NULL rows were skipped");
	diag(sprintf('%s: %d samples, baseline RssAnon %.1f MB, peak RssAnon %.1f MB, '
		  . 'VmHWM %.1f MB, %.1f s of training',
		$table, $n, $base / 1024, $peak / 1024, $hwm / 1024, $secs));
	cmp_ok($n, '>=', 5, "$table: memory was sampled while training");
	# the last line is the row count
	return ($base, $peak, $hwm, $secs, (split /\n/, $s->{out})[-1]);
}

$node->safe_psql('postgres',
	'CREATE TABLE smsid AS SELECT row_number() OVER () - 1 AS i, body, label FROM sms');
my $rows100k = make_table('rows_100k', 100_000);
my $rows1m = make_table('rows_1m', 1_000_000);
is($rows100k, '99800', '100,000 rows, 200 of them with a NULL');
is($rows1m, '998000', '1,000,000 rows, 2,000 of them with a NULL');

my ($b1, $p1, $h1, $t1, $n1) = train_sampled('rows_100k', 'm100k', 120);
is($n1, $rows100k, '100k: every non-NULL row was trained on or validated');
my ($b2, $p2, $h2, $t2, $n2) = train_sampled('rows_1m', 'm1m', 400);
is($n2, $rows1m, '1M: every non-NULL row was trained on or validated');

cmp_ok($p2, '<', 512 * 1024, 'peak RssAnon on 1,000,000 rows is under 512 MB');
# a materialized result grows tenfold; streaming grows only by the per-row
# bookkeeping of the trainer (a few bytes a row)
my $g1 = $p1 - $b1;
my $g2 = $p2 - $b2;
diag(sprintf('growth over baseline: 100k rows %.1f MB, 1M rows %.1f MB (ratio %.2f)',
	$g1 / 1024, $g2 / 1024, $g1 > 0 ? $g2 / $g1 : 0));
cmp_ok($g2, '<', 2 * $g1 + 32 * 1024,
	'peak RssAnon does not scale with the row count (rows are read through a cursor)');
diag(sprintf('1M-row run: %.1f s (%.0f rows/s)', $t2, $t2 > 0 ? 1e6 / $t2 : 0));
is(tmp_file_count($node), '0', 'no temporary file is left');

$node->stop;
done_testing();
