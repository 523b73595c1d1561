# 001_cancel.pl
#	  A long train_classifier() stops promptly on a query cancel
#	  (pg_cancel_backend) and on statement_timeout, and leaves nothing
#	  behind: no model version, no training log or deployment row, no
#	  temporary spill file.
#
#	  The training run would take hours (sms_spam four times over, 500 epochs,
#	  early stopping off); it is cancelled a few seconds after its spill
#	  file appeared, i.e. in the middle of an epoch.  The latency is the time
#	  from pg_cancel_backend() (or from the statement's start plus the
#	  timeout) to psql receiving the error; it must stay under 2 s.
#	  Does not test cancels of predict(), which has no long loop.

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
my $node = textclf_node('cancel');
load_sms($node, 'postgres', 'sms');
$node->safe_psql('postgres', q{
	CREATE TABLE sms4 AS SELECT s.* FROM sms s CROSS JOIN generate_series(1, 4);
	ANALYZE sms4;
});

my $train = q{SELECT version FROM train_classifier('long', 'sms4', 'body', 'label',
	'{"epochs": 500, "patience": 0}')};

# what must be left after an aborted training
sub check_nothing_left
{
	my ($what) = @_;

	is($node->safe_psql('postgres', 'SELECT count(*) FROM textclf.models'),
		'0', "$what: no model version stored");
	is( $node->safe_psql('postgres',
			'SELECT (SELECT count(*) FROM textclf.training_log) + (SELECT count(*) FROM textclf.deployments)'
		),
		'0',
		"$what: no training log or deployment row");
	ok(poll_sql($node, 'postgres', 'SELECT count(*) FROM pg_ls_tmpdir()', '0', 5),
		"$what: base/pgsql_tmp is empty");
}

# ---- pg_cancel_backend ----

# ON_ERROR_STOP off: the same backend then counts its temporary files, so
# they are shown to be gone after the abort, not merely at backend exit
my $s = bg_psql($node, 'postgres', 'tap_cancel', 120, { on_error_stop => 0 },
	$train, 'SELECT count(*) FROM pg_ls_tmpdir()');
my $pid = backend_pid($node, 'tap_cancel');
ok(wait_for_training($node, 'tap_cancel', 3), 'training is running with a spill file');
ok(!bg_poll($s), 'training still runs after the wait')
  or diag("psql ended early: $s->{err}");

# cancel from a session that is already connected, so that the latency
# does not include starting psql on a busy machine
my $ctl = $node->background_psql('postgres', timeout => 60);
my $t0 = time();
is($ctl->query_safe("SELECT pg_cancel_backend($pid)"), 't', 'pg_cancel_backend');
my $got = bg_wait($s, 30, qr/canceling statement due to user request/);
my $latency = defined $got ? time() - $t0 : undef;
ok(defined $latency, 'psql reports "canceling statement due to user request"')
  or diag("stderr: $s->{err}");
$latency //= 999;
diag(sprintf('cancel latency (pg_cancel_backend -> error at the client): %.3f s', $latency));
cmp_ok($latency, '<', 2, 'the cancel took effect within 2 s');
bg_finish($s, 30);
$ctl->quit;
like($s->{err}, qr/ERROR:\s+canceling statement due to user request/, 'the error is the cancel');
is($s->{out}, '0', 'the same session sees no temporary file after the abort');
check_nothing_left('cancel');

# the backend is usable again and the extension still works
$node->safe_psql('postgres', q{SELECT train_classifier('small', 'sms', 'body', 'label',
	'{"epochs": 1, "hidden_size": 8, "embedding_dim": 8, "max_len": 20}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM textclf.models WHERE model_name = 'small'}),
	'1', 'a training after the cancel succeeds');
$node->safe_psql('postgres', q{SELECT drop_model('small')});

# ---- statement_timeout ----

$s = bg_psql($node, 'postgres', 'tap_timeout', 120,
	"SET statement_timeout = '3s'", $train);
$pid = backend_pid($node, 'tap_timeout');
# when the statement started, by the server's clock (the same machine)
my $qstart = '';
my $t1 = time();
while ($qstart eq '' && time() - $t1 < 30 && !bg_poll($s))
{
	$qstart = $node->safe_psql('postgres', qq{
		SELECT extract(epoch FROM query_start) FROM pg_stat_activity
		WHERE pid = $pid AND state = 'active' AND query LIKE '%train_classifier%'});
}
ok($qstart ne '', 'the timed-out statement was seen running');
my $w = bg_wait($s, 60, qr/canceling statement due to statement timeout/);
ok(defined $w, 'psql reports "canceling statement due to statement timeout"')
  or diag("stderr: $s->{err}");
my $tlat = ($qstart ne '' ? time() - $qstart : 999) - 3;
diag(sprintf('statement_timeout latency (statement start + 3 s -> error at the client): %.3f s', $tlat));
cmp_ok($tlat, '<', 2, 'the statement ended within 2 s after its timeout');
cmp_ok($tlat, '>', -0.2, 'and not before the timeout');
bg_finish($s, 30);
isnt($s->{rc}, 0, 'psql failed');
check_nothing_left('statement_timeout');

$node->stop;
done_testing();
