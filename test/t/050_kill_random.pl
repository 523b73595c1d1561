# 050_kill_random.pl
#	  kill -9 of a training backend at random points, 20 times, plus three
#	  kills placed inside the store of a version (after the model and its
#	  training log rows were inserted, before the deployment row and the
#	  commit) and one after the commit was acknowledged.  After every kill the server recovers by itself (crash
#	  restart), the registry holds exactly the versions committed before
#	  (models with their content ids, deployments, training log, version
#	  counters), or those plus the one the killed run committed just before
#	  the kill (only possible when the kill came after the commit), every
#	  version still predicts exactly as when it was committed, predict() by
#	  name uses the deployed version, and base/pgsql_tmp is empty.
#
#	  Each training is small (2,000 SMS rows, a small model, a few epochs,
#	  a quarter of a second here), so the random delays (uniform between 0.02 s
#	  and the measured duration of such a training) spread the kills over
#	  the reading passes, the epochs and the end of the run.  The seed is
#	  printed; TEXTCLF_KILL_SEED=<seed> repeats a run's delays (the machine's
#	  speed still moves the kill points).  textclf is preloaded so that the
#	  live progress view names the phase each kill landed in.
#
#	  Does not kill other processes than the training backend (the
#	  postmaster, the checkpointer, the WAL writer), and does not test the
#	  kill of a predict() (nothing is written there).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TextclfTap;

my $KILLS = 20;			# random kills that hit a running training
my $STORE_KILLS = 3;	# kills placed inside the store of a version

datasets_dir();
my $seed = $ENV{TEXTCLF_KILL_SEED} // (time() * 1000 ^ $$) % 1_000_000;
srand($seed);
diag("random seed: $seed (TEXTCLF_KILL_SEED=$seed repeats the delays)");

# the framework turns restart_after_crash off; this test needs it
my $node = textclf_node('kill_random',
	"restart_after_crash = on\nshared_preload_libraries = 'textclf'\n");
load_sms($node, 'postgres', 'sms');
load_sms($node, 'postgres', 'sms_test', 'sms_spam_test.csv.gz');
$node->safe_psql('postgres', q{
	-- each text 32 times over: the reading passes take about a third
	-- of a run (max_len keeps the epochs short), so random kills hit both
	CREATE TABLE s2k AS SELECT repeat(body || ' ', 32) AS body, label
		FROM (SELECT * FROM sms ORDER BY body LIMIT 2000) s;
	CREATE TABLE probe AS
		SELECT row_number() OVER (ORDER BY body) AS id, body
		FROM (SELECT body FROM sms_test ORDER BY body LIMIT 50) s;
	ANALYZE s2k, probe;
});

my $EPOCHS = 6;
sub train_sql
{
	my ($seedopt) = @_;
	return qq{SELECT version FROM train_classifier('k', 's2k', 'body', 'label',
		'{"epochs": $EPOCHS, "patience": 0, "hidden_size": 16, "embedding_dim": 8,
		  "max_len": 30, "vocab_size": 2000, "deploy": "always", "seed": $seedopt}')};
}

# The registry, as one string: versions with content ids, deployment
# history, training log rows per version and the version counters.
my $registry = q{
	SELECT 'models ' || coalesce((SELECT string_agg(model_name || '@' || version || ':' || content_id,
			',' ORDER BY model_name, version) FROM textclf.models), '')
		|| E'\ndeployments ' || coalesce((SELECT string_agg(id || ':' || model_name || '@' || version
			|| ':' || rolled_back, ',' ORDER BY id) FROM textclf.deployments), '')
		|| E'\nlog ' || coalesce((SELECT string_agg(model_name || '@' || version || 'x' || n, ','
			ORDER BY model_name, version) FROM (SELECT model_name, version, count(*) AS n
			FROM textclf.training_log GROUP BY 1, 2) l), '')
		|| E'\ncounters ' || coalesce((SELECT string_agg(model_name || '=' || last_version, ','
			ORDER BY model_name) FROM textclf.version_counters), '')};

# What every version predicts on the probe texts (label and probabilities).
sub fingerprint
{
	my ($model) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT md5(string_agg(id || ' ' || predict('$model', body) || ' '
			|| predict_proba('$model', body)::text, E'\n' ORDER BY id)) FROM probe});
}

# Wait until the session printed its backend's PID; returns it (or undef).
sub session_pid
{
	my ($s) = @_;
	my $t = time();

	usleep(5_000) until bg_poll($s) || $s->{out} =~ /^\d+\n/ || time() - $t > 60;
	return $s->{out} =~ /^(\d+)\n/ ? $1 : undef;
}

my %fp;			# version -> fingerprint when it was committed
sub versions
{
	return split /\n/,
	  $node->safe_psql('postgres',
		"SELECT version FROM textclf.models WHERE model_name = 'k' ORDER BY 1");
}

sub deployed
{
	return $node->safe_psql('postgres',
		"SELECT version FROM textclf.versions WHERE model_name = 'k' AND deployed");
}

# version 1, committed; a second, timed run gives the typical duration
$node->safe_psql('postgres', train_sql(1));
$fp{1} = fingerprint('k@1');
my $t0 = time();
my $s = bg_psql($node, 'postgres', 'tap_warm', 120, 'SELECT pg_backend_pid()', train_sql(2));
session_pid($s);
my $tstart = time();
bg_finish($s, 120);
my $typical = time() - $tstart;
is($s->{rc}, 0, 'a timed training run succeeds') or diag($s->{err});
$fp{2} = fingerprint('k@2');
isnt($fp{1}, $fp{2}, 'versions 1 and 2 predict differently (their kills are told apart)');
diag(sprintf('a training run takes %.3f s from the backend\'s start (psql start: %.3f s)',
		$typical, $tstart - $t0));
$typical = 0.1 if $typical < 0.1;
# the durations of runs that finish before their kill time refine it (the
# median), so that one slow measurement on a loaded machine does not make
# most delays overshoot
my @durations = ($typical);

my %phases;
my ($killed, $finished_first, $committed_at_kill, $runs) = (0, 0, 0, 0);
my $failures = 0;

# Check everything after a kill: recovery, the registry, predictions, temp
# files.  $before is the registry before the run; $result the run's session.
sub check_after_kill
{
	my ($what, $before, $s) = @_;
	my $ok = 1;

	$ok &&= ok(poll_sql($node, 'postgres', 'SELECT 1', '1', 90),
		"$what: the server accepts connections again");
	my $after = $node->safe_psql('postgres', $registry);
	my $got_result = ($s->{rc} // 1) == 0 && $s->{out} =~ /^\d+\n\d+$/;
	if ($after eq $before)
	{
		$ok &&= ok(!$got_result, "$what: the registry is unchanged (the run was not committed)");
	}
	else
	{
		# only a committed run may show: exactly one new version, deployed,
		# with its full training log, everything before it unchanged
		my @v = versions();
		my $new = $v[-1];
		my $prev = $node->safe_psql('postgres', qq{
			SELECT 'models ' || coalesce((SELECT string_agg(model_name || '\@' || version || ':' || content_id,
					',' ORDER BY model_name, version) FROM textclf.models WHERE version < $new), '')});
		my ($bm, $bd, $bl, $bc) = split /\n/, $before;
		my ($am, $ad, $al, $ac) = split /\n/, $after;
		my $sep = sub { $_[0] =~ / \S/ ? ',' : '' };
		$committed_at_kill++;
		$ok &&= is($prev, $bm, "$what: the versions before the committed one are unchanged");
		$ok &&= like($am, qr/^\Q$bm\E\Q@{[ $sep->($bm) ]}\Ek\@$new:-?\d+$/,
			"$what: the run committed just before the kill: one new version $new");
		$ok &&= like($ad, qr/^\Q$bd\E\Q@{[ $sep->($bd) ]}\E\d+:k\@$new:false$/,
			"$what: version $new was deployed, the history before is unchanged");
		$ok &&= like($al, qr/^\Q$bl\E\Q@{[ $sep->($bl) ]}\Ek\@${new}x$EPOCHS$/,
			"$what: version $new has its whole training log");
		$ok &&= is($ac, "counters k=$new", "$what: the counter is at version $new");
		diag("before:\n$before\nafter:\n$after") unless $ok;
		$fp{$new} = fingerprint("k\@$new");
		$before = $after;
	}
	is(tmp_file_count($node), '0', "$what: base/pgsql_tmp is empty") or $ok = 0;
	my $dep = deployed();
	$ok &&= is(fingerprint('k'), $fp{$dep},
		"$what: predict() by name uses version $dep and predicts as when it was committed");
	# (every version's predictions are checked once, after the last kill)
	$failures++ unless $ok;
	return $after;
}

# ---- kills at random points ----

my $before = $node->safe_psql('postgres', $registry);
my $attempt = 0;
while ($killed < $KILLS && $attempt < 5 * $KILLS)
{
	$attempt++;
	my $delay = 0.02 + rand($typical - 0.02);
	my $mon = $node->background_psql('postgres', timeout => 60);
	$s = bg_psql($node, 'postgres', "tap_kill_$attempt", 120,
		'SELECT pg_backend_pid()', train_sql(100 + $attempt));
	my $pid = session_pid($s);
	if (!defined $pid)
	{
		fail("run $attempt: the training session started") or diag($s->{err});
		$failures++;
		last;
	}
	my $t = time();
	bg_poll($s), usleep(5_000) while !$s->{done} && time() - $t < $delay;
	if (bg_poll($s))
	{
		# the run ended before its kill time: count it, it was committed
		$finished_first++;
		push @durations, time() - $t;
		@durations = sort { $a <=> $b } @durations;
		$typical = $durations[ $#durations / 2 ];
		$typical = 0.1 if $typical < 0.1;
		$mon->quit;
		is($s->{rc}, 0, "run $attempt: finished before its kill at ${\ sprintf('%.2f', $delay)} s")
		  or $failures++;
		my @v = versions();
		$fp{ $v[-1] } = fingerprint("k\@$v[-1]");
		$before = $node->safe_psql('postgres', $registry);
		next;
	}
	my $phase = $mon->query("SELECT phase || coalesce(' epoch ' || epoch, '') FROM textclf.training_progress WHERE pid = $pid");
	my $epochs_seen = () = $s->{err} =~ /epoch \d+: loss/g;
	# no progress row: not started yet, or stored and committing
	$phase = $epochs_seen ? 'committing' : 'starting' if $phase eq '';
	$phase = 'committing' if $s->{err} =~ /trained on/;
	if (!kill('KILL', $pid))
	{
		# the run ended (and its backend exited) between the poll and the
		# kill: count it as finished first, it was committed
		BAIL_OUT("cannot kill backend $pid: $!") unless $!{ESRCH};
		bg_finish($s, 60);
		eval { $mon->quit; };
		$finished_first++;
		is($s->{rc}, 0, "run $attempt: finished just before its kill")
		  or $failures++;
		my @v = versions();
		$fp{ $v[-1] } = fingerprint("k\@$v[-1]");
		$before = $node->safe_psql('postgres', $registry);
		next;
	}
	$killed++;
	$runs++;
	$phases{ (split / /, $phase)[0] }++;
	diag(sprintf('kill %2d: after %.3f s, phase %s (%d epoch notices seen)',
			$killed, $delay, $phase, $epochs_seen));
	bg_finish($s, 60);
	eval { $mon->quit; };
	$before = check_after_kill("kill $killed", $before, $s);
}
is($killed, $KILLS, "$KILLS kills hit a running training");

# ---- kills inside the store of a version ----

# A transaction holding SHARE on textclf.deployments lets the training
# insert its model and training log rows, then makes it wait at its
# deployment row: the kill lands inside the storing transaction.
for my $i (1 .. $STORE_KILLS)
{
	my $lock = $node->background_psql('postgres', timeout => 120);
	$lock->query_safe('BEGIN; LOCK TABLE textclf.deployments IN SHARE MODE');
	$s = bg_psql($node, 'postgres', "tap_store_$i", 120,
		'SELECT pg_backend_pid()', train_sql(200 + $i));
	my $pid = session_pid($s) // 0;
	my $waiting = poll_sql($node, 'postgres', qq{
		SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
		WHERE a.pid = $pid AND l.relation = 'textclf.deployments'::regclass}, '1', 60);
	ok($waiting, "store kill $i: the training waits for its deployment row");
	my $inserted = $node->safe_psql('postgres', qq{
		SELECT l.mode FROM pg_locks l WHERE l.pid = $pid AND l.granted
		  AND l.relation = 'textclf.models'::regclass AND l.mode = 'RowExclusiveLock'});
	is($inserted, 'RowExclusiveLock', "store kill $i: it has inserted into textclf.models");
	kill('KILL', $pid) or BAIL_OUT("cannot kill backend $pid: $!");
	$runs++;
	$phases{storing}++;
	bg_finish($s, 60);
	eval { $lock->quit; };
	$before = check_after_kill("store kill $i", $before, $s);
	like($before, qr/counters k=\d+/, "store kill $i: the registry is readable");
}

# ---- a kill right after the commit ----

# the session sleeps after its training returned: the version's commit was
# acknowledged to the client, so it must survive the crash
{
	$s = bg_psql($node, 'postgres', 'tap_after_commit', 120,
		'SELECT pg_backend_pid()', train_sql(300), 'SELECT pg_sleep(60)');
	my $pid = session_pid($s) // 0;
	my $t = time();
	usleep(10_000) until bg_poll($s) || $s->{out} =~ /^\d+\n\d+\n/ || time() - $t > 60;
	like($s->{out}, qr/^\d+\n\d+\n/, 'after commit: the training returned its version');
	ok(poll_sql($node, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE '%pg_sleep%'",
		'1', 30), 'after commit: the session has gone on to its next statement');
	my $committed = $committed_at_kill;
	kill('KILL', $pid) or BAIL_OUT("cannot kill backend $pid: $!");
	$runs++;
	$phases{'after commit'}++;
	bg_finish($s, 60);
	$before = check_after_kill('after commit', $before, $s);
	is($committed_at_kill, $committed + 1, 'after commit: the acknowledged version survived the crash');
}

# ---- at the end: every version, the log, and a normal training ----

foreach my $v (sort { $a <=> $b } keys %fp)
{
	is(fingerprint("k\@$v"), $fp{$v}, "version $v predicts as when it was committed")
	  or $failures++;
}
my $nkilled = () = slurp_file($node->logfile) =~ /terminated by signal 9: Killed/g;
# a kill that came after the commit may have found the backend already
# exiting normally: then there was no crash to log
cmp_ok($nkilled, '>=', $runs - $committed_at_kill + 1,
	"the server log shows the backends killed by signal 9 ($nkilled of $runs kills)");
cmp_ok($nkilled, '<=', $runs, 'and no other process was killed');
my @v = versions();
is($node->safe_psql('postgres', train_sql(999)), $v[-1] + 1,
	'a training after the kills stores the next version');
is(tmp_file_count($node), '0', 'base/pgsql_tmp is empty at the end');

diag(sprintf('crash runs: %d kills (%d at random points, %d inside the store or after the commit); '
	  . '%d runs finished before their kill time; %d kills came after the commit; '
	  . 'phases: %s; failures: %d',
		$runs, $killed, $runs - $killed, $finished_first, $committed_at_kill,
		join(', ', map { "$_ $phases{$_}" } sort keys %phases), $failures));

$node->stop;
done_testing();
