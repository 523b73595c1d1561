# 030_progress.pl
#	  Live training progress: with textclf in shared_preload_libraries, a
#	  second session sees a running train_classifier() in
#	  textclf.training_progress (phase, epoch, batch, rows, loss, rows/s,
#	  eta), the numbers advance, and the row goes away when the training
#	  ends, is cancelled (also inside a plpgsql exception block, the
#	  session still running), or its backend is terminated.  Other roles
#	  see only what they may (their own rows, or all with
#	  pg_read_all_stats).  With all textclf.max_trainings slots taken, a
#	  training still runs, without a row, and says so in a NOTICE.
#	  Without preloading the view is empty and training works.
#
#	  Does not test a backend crash: the postmaster then reinitialises
#	  shared memory, slots included.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TextclfTap;

datasets_dir();

my $node = textclf_node('progress',
	"shared_preload_libraries = 'textclf'\ntextclf.max_trainings = 2\n");
load_sms($node, 'postgres', 'sms');
$node->safe_psql('postgres', q{
	CREATE TABLE sms2 AS SELECT s.* FROM sms s CROSS JOIN generate_series(1, 2);
	CREATE TABLE sms4 AS SELECT s.* FROM sms s CROSS JOIN generate_series(1, 4);
	ANALYZE sms2, sms4;
	CREATE ROLE alice LOGIN;
	CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats;
	GRANT USAGE ON SCHEMA textclf TO alice, watcher;
});

is($node->safe_psql('postgres', 'SHOW textclf.max_trainings'), '2',
	'textclf.max_trainings is set');
is($node->safe_psql('postgres', 'SELECT count(*) FROM textclf.training_progress'),
	'0', 'no training, no row');

# ---- a training seen from a second session ----

my $epochs = 5;
my $s = bg_psql($node, 'postgres', 'tap_progress', 300,
	qq{SELECT version FROM train_classifier('main', 'sms2', 'body', 'label',
		'{"epochs": $epochs, "patience": 0}')});

my $cols = q{phase, epoch, epochs, batch, batches, rows_done, rows_total, loss,
	rows_per_sec, extract(epoch FROM elapsed), extract(epoch FROM eta),
	pid, database, username};
my $q = "SELECT $cols FROM textclf.training_progress WHERE model_name = 'main'";

# poll until the row shows phase 'training'; remember the phases seen
my (%phases, @first);
my $t0 = time();
while (time() - $t0 < 120 && !bg_poll($s))
{
	my $r = $node->safe_psql('postgres', $q);
	if ($r ne '')
	{
		my @f = split /\|/, $r;
		$phases{ $f[0] } //= sprintf('%.1f s', time() - $t0);
		if ($f[0] eq 'training')
		{
			@first = @f;
			last;
		}
	}
	usleep(50_000);
}
diag('phases seen (first time): ' . join(', ', map { "$_ at $phases{$_}" } sort keys %phases));
ok(@first, 'a row of the model appears with phase training')
  or diag("psql: $s->{err}");
@first = ('') x 14 unless @first;
my $pid = backend_pid($node, 'tap_progress');
is($first[11], $pid, 'pid is the training backend');
is($first[12], 'postgres', 'database');
is($first[13], 'postgres', 'username');
is($first[2], $epochs, 'epochs is the maximum');
cmp_ok($first[1] || 0, '>=', 1, 'epoch is at least 1');
cmp_ok($first[3] || 0, '>=', 1, 'batch is at least 1');
cmp_ok($first[3] || 0, '<=', $first[4] || 0, 'batch <= batches');
cmp_ok($first[5] || 0, '<=', $first[6] || 0, 'rows_done <= rows_total');
like($first[7], qr/^\d+(\.\d+)?(e-?\d+)?$/, 'loss is a number');
like($first[8], qr/^\d+(\.\d+)?(e[-+]?\d+)?$/, 'rows_per_sec is a number');
like($first[10], qr/^\d+(\.\d+)?$/, 'eta is not null');
cmp_ok($first[9] || 0, '>', 0, 'elapsed is positive');

# poll again until the position (epoch, batch) moved on
my @second;
$t0 = time();
while (time() - $t0 < 60 && !bg_poll($s))
{
	usleep(300_000);
	my $r = $node->safe_psql('postgres', $q);
	next if $r eq '';
	my @f = split /\|/, $r;
	next if $f[0] ne 'training';
	my $pos = ($f[1] - 1) * $f[4] + $f[3];
	if ($pos > ($first[1] - 1) * $first[4] + $first[3])
	{
		@second = @f;
		last;
	}
}
ok(@second, 'a later poll shows a later batch') or diag("psql: $s->{err}");
@second = @first unless @second;
diag("first poll: epoch $first[1] batch $first[3]/$first[4] rows $first[5]/$first[6] "
	  . "loss $first[7] rows/s $first[8] eta $first[10] s");
diag("later poll: epoch $second[1] batch $second[3]/$second[4] rows $second[5]/$second[6] "
	  . "loss $second[7] rows/s $second[8] eta $second[10] s");
ok( $second[1] > $first[1]
	  || ($second[1] == $first[1] && $second[5] > $first[5]),
	'rows done advance within the epoch or the epoch advances');
cmp_ok($second[9], '>', $first[9], 'elapsed advances');

# visibility: a plain role sees no row of another role, pg_read_all_stats does
is($node->safe_psql('postgres',
		"SET ROLE alice; SELECT count(*) FROM textclf.training_progress"),
	'0', 'another role does not see the training');
is($node->safe_psql('postgres',
		"SET ROLE watcher; SELECT model_name FROM textclf.training_progress"),
	'main', 'a member of pg_read_all_stats sees it');

bg_finish($s, 240);
is($s->{rc}, 0, 'the training finished') or diag("psql: $s->{err}");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM textclf.training_progress WHERE model_name = 'main'"),
	'0', 'the row is gone once train_classifier returned');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM textclf.training_log WHERE model_name = 'main'"),
	$epochs, 'the epochs of the finished run stay in textclf.training_log');

# ---- cancel, terminate, and all slots taken ----

my $long = q{'{"epochs": 500, "patience": 0}'};

# wait until model $m shows phase training; true if it did
sub wait_training
{
	my ($m) = @_;
	return poll_sql($node, 'postgres',
		"SELECT phase FROM textclf.training_progress WHERE model_name = '$m'",
		'training', 90);
}

my $sa = bg_psql($node, 'postgres', 'tap_prog_a', 300,
	"SELECT train_classifier('long_a', 'sms4', 'body', 'label', $long)");
my $sb = bg_psql($node, 'postgres', 'tap_prog_b', 300,
	"SELECT train_classifier('long_b', 'sms4', 'body', 'label', $long)");
ok(wait_training('long_a') && wait_training('long_b'),
	'two long trainings are shown');
my $pid_a = backend_pid($node, 'tap_prog_a');
my $pid_b = backend_pid($node, 'tap_prog_b');

# both slots are taken: a third training works but has no row
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT version FROM train_classifier('third', 'sms', 'body', 'label',
		'{"epochs": 1, "hidden_size": 8, "embedding_dim": 8, "max_len": 20}')});
is($rc, 0, 'a training beyond textclf.max_trainings succeeds');
like($err, qr/training of model "third" is not shown in textclf.training_progress/,
	'and says in a NOTICE that it is not shown');

$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid_a)");
bg_finish($sa, 60);
like($sa->{err}, qr/canceling statement due to user request/, 'training a was cancelled');
ok(poll_sql($node, 'postgres',
		"SELECT count(*) FROM textclf.training_progress WHERE model_name = 'long_a'",
		'0', 5),
	'the cancelled training\'s row is gone');

$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid_b)");
bg_finish($sb, 60);
ok(poll_sql($node, 'postgres',
		"SELECT count(*) FROM textclf.training_progress WHERE model_name = 'long_b'",
		'0', 10),
	'the terminated backend\'s row is gone');

# a cancel caught in a plpgsql block: the session goes on (sleeps), the
# row must be gone already (subtransaction abort), and a slot free again
my $c = bg_psql($node, 'postgres', 'tap_prog_c', 300, qq{DO \$\$
	BEGIN
		PERFORM train_classifier('long_c', 'sms4', 'body', 'label', $long);
	EXCEPTION WHEN query_canceled THEN
		RAISE NOTICE 'caught the cancel';
		PERFORM pg_sleep(20);
	END \$\$});
ok(wait_training('long_c'), 'a training inside a plpgsql block is shown');
my $pid_c = backend_pid($node, 'tap_prog_c');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid_c)");
ok(defined bg_wait($c, 30, qr/caught the cancel/), 'the block caught the cancel');
ok(poll_sql($node, 'postgres',
		"SELECT count(*) FROM textclf.training_progress WHERE model_name = 'long_c'",
		'0', 5),
	'the row is gone while the session still runs');
ok(!bg_poll($c), 'the session still runs (pg_sleep)');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid_c)");
bg_finish($c, 30);

is($node->safe_psql('postgres', 'SELECT count(*) FROM textclf.training_progress'),
	'0', 'no slot is left taken');
# both slots are usable again
$s = bg_psql($node, 'postgres', 'tap_prog_d', 300,
	"SELECT train_classifier('long_d', 'sms4', 'body', 'label', $long)");
my $s2 = bg_psql($node, 'postgres', 'tap_prog_e', 300,
	"SELECT train_classifier('long_e', 'sms4', 'body', 'label', $long)");
ok(wait_training('long_d') && wait_training('long_e'),
	'both slots can be claimed again');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE application_name IN ('tap_prog_d', 'tap_prog_e')});
bg_finish($s, 60);
bg_finish($s2, 60);
$node->stop;

# ---- without preloading ----

my $plain = textclf_node('progress_plain');
load_sms($plain, 'postgres', 'sms');
$s = bg_psql($plain, 'postgres', 'tap_plain', 300,
	q{SELECT version FROM train_classifier('plain', 'sms', 'body', 'label',
		'{"epochs": 2}')});
ok(wait_for_training($plain, 'tap_plain', 1), 'a training runs without preloading');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM textclf.training_progress'),
	'0', 'the view is empty without preloading');
bg_finish($s, 240);
is($s->{rc}, 0, 'the training finished') or diag("psql: $s->{err}");
like($s->{err}, qr/NOTICE:  model "plain" epoch 2: loss/, 'the per-epoch NOTICE is there');
is($plain->safe_psql('postgres',
		"SELECT count(*) FROM textclf.versions WHERE model_name = 'plain'"),
	'1', 'the model was stored');
$plain->stop;

done_testing();
