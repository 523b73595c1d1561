# 053_preload_concurrency.pl
#	  16 sessions call predict() and predict_proba() by model name, query
#	  after query, while another session flips the deployed version with
#	  deploy() and rollback() and a third one retrains (a new version,
#	  deployed when it commits).  Twice: with textclf in
#	  shared_preload_libraries and without.
#
#	  The versions are told apart by their outputs: version 1 learns the
#	  SMS labels, version 2 the flipped labels, version 3 a third labeling.
#	  Every query returns md5 of all its outputs on 300 fixed texts (the
#	  label and the probabilities of each), which must equal the
#	  fingerprint of exactly one version, computed beforehand with the
#	  pinned names 'm@1', 'm@2', 'm@3': a query that mixed versions, failed
#	  or hung is a failure.  Every session must finish before a deadline.
#	  With preloading, the postmaster must stay single-threaded (one entry
#	  in /proc/<pid>/task) and must not have OpenBLAS mapped: a BLAS thread
#	  pool started in the postmaster does not survive fork() (the
#	  OpenBLAS-after-fork trap), backends would hang in their first BLAS
#	  call.  A backend that only scored must not have OpenBLAS mapped
#	  either (on a CPU with the fast kernels).  The number of queries is
#	  printed.
#
#	  The sessions are psql processes driven from this script without
#	  blocking (IPC::Run): each has one query in flight and gets the next
#	  as soon as its answer arrives.  Does not test parallel query workers.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TextclfTap;

my $SESSIONS = 16;
my $SECONDS = $ENV{TEXTCLF_CONCURRENCY_SECONDS} // 20;
my $HANG = 60;			# a query running longer than this has hung

datasets_dir();
my $total_queries = 0;
my @report;

# A psql session reading queries from its stdin.
sub start_session
{
	my ($node, $app) = @_;
	my %s = (in => '', out => '', err => '', app => $app, n => 0,
		busy => 0, results => []);
	my @cmd = (
		$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=0',
		'-d', $node->connstr('postgres') . " application_name=$app", '-f', '-');
	local %ENV = $node->_get_env();
	$s{h} = IPC::Run::start(\@cmd, '<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
	return \%s;
}

# Send one statement; the \echo marks where its output ends.
sub send_query
{
	my ($s, $sql) = @_;
	$s->{n}++;
	$s->{in} .= "$sql;\n\\echo __END__ $s->{n}\n";
	$s->{busy} = 1;
	$s->{sent} = time();
	$s->{sql} = $sql;
}

# Pump without blocking; returns [output, stderr, seconds] once the
# statement in flight ended, else undef.
sub poll_query
{
	my ($s) = @_;
	eval { $s->{h}->pump_nb; };
	return undef unless $s->{busy} && $s->{out} =~ s/\A(.*?)__END__ $s->{n}\n//s;
	my $out = $1;
	chomp $out;
	my $err = $s->{err};
	$s->{err} = '';
	$s->{busy} = 0;
	return [ $out, $err, time() - $s->{sent} ];
}

sub end_session
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	my $ok = eval {
		my $t = time();
		while ($s->{h}->pumpable && time() - $t < 30)
		{
			$s->{h}->pump_nb;
			usleep(10_000);
		}
		$s->{h}->kill_kill if $s->{h}->pumpable;
		$s->{h}->finish;
		1;
	};
	return $ok;
}

# Threads of a process and whether OpenBLAS is mapped into it.
sub proc_threads
{
	my ($pid) = @_;
	opendir(my $d, "/proc/$pid/task") or return (-1, 0);
	my $n = grep { /^\d+$/ } readdir($d);
	closedir $d;
	open(my $fh, '<', "/proc/$pid/maps") or return ($n, 0);
	my $blas = grep { /openblas|libblas/i } <$fh>;
	close $fh;
	return ($n, $blas);
}

# Does the CPU have what the core's fast kernels need (avx2 and fma)?
sub cpu_has_fast_kernels
{
	open(my $fh, '<', '/proc/cpuinfo') or return 0;
	my ($flags) = grep { /^flags\s*:/ } <$fh>;
	close $fh;
	return defined($flags) && $flags =~ /\bavx2\b/ && $flags =~ /\bfma\b/;
}

sub postmaster_pid
{
	my ($node) = @_;
	open(my $fh, '<', $node->data_dir . '/postmaster.pid') or return undef;
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

sub run_config
{
	my ($label, $preload) = @_;
	my $conf = "max_connections = 40\n";
	$conf .= "shared_preload_libraries = 'textclf'\n" if $preload;
	my $node = textclf_node("conc_$label", $conf);
	my $pm = postmaster_pid($node);

	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_settings
		WHERE name = 'shared_preload_libraries' AND setting = 'textclf'}),
		$preload ? '1' : '0', "$label: textclf is " . ($preload ? '' : 'not ') . 'preloaded');
	load_sms($node, 'postgres', 'sms');
	load_sms($node, 'postgres', 'sms_test', 'sms_spam_test.csv.gz');
	$node->safe_psql('postgres', q{
		CREATE TABLE probe AS
			SELECT row_number() OVER (ORDER BY body) AS id, body
			FROM (SELECT body FROM sms_test ORDER BY body LIMIT 300) s;
		CREATE TABLE flipped AS
			SELECT body, CASE label WHEN 'spam' THEN 'ham' ELSE 'spam' END AS label FROM sms;
		CREATE TABLE third AS
			SELECT body, CASE WHEN length(body) > 60 THEN 'spam' ELSE 'ham' END AS label FROM sms;
		ANALYZE probe;
	});
	my $opts = q{'{"epochs": 2, "hidden_size": 16, "embedding_dim": 8, "max_len": 40, "deploy": "always"}'};
	# trained in one session, whose backend then has OpenBLAS mapped: the
	# postmaster checks below can see the library
	my $trainer = $node->background_psql('postgres', timeout => 300);
	$trainer->query_safe(qq{
		SET client_min_messages = warning;
		SELECT train_classifier('m', 'sms', 'body', 'label', $opts);
		SELECT train_classifier('m', 'flipped', 'body', 'label', $opts);
	});
	my $tpid = $trainer->query_safe('SELECT pg_backend_pid()');
	cmp_ok((proc_threads($tpid))[1], '>', 0,
		"$label: the training backend has OpenBLAS mapped (seen in /proc/$tpid/maps)");
	$trainer->quit;

	my $fp_sql = sub {
		my ($m) = @_;
		return qq{SELECT md5(string_agg(predict('$m', body) || ' '
			|| predict_proba('$m', body)::text, ',' ORDER BY id)) FROM probe};
	};
	my %fp = map { $node->safe_psql('postgres', $fp_sql->("m\@$_")) => $_ } (1, 2);
	is(scalar(keys %fp), 2, "$label: versions 1 and 2 have different fingerprints");

	# scoring alone never loads OpenBLAS (the fast kernels and the output
	# layer are the core's own loops): a backend that only predicted has
	# none mapped.  Without AVX2 and FMA the reference path multiplies
	# through OpenBLAS, and there is nothing to check.
	if (cpu_has_fast_kernels())
	{
		is($node->safe_psql('postgres', q{
			SELECT count(predict('m@1', body)) FROM probe;
			SELECT count(*) FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\n') l
			WHERE l ~ 'openblas|libblas'}),
			"300\n0", "$label: a backend that only scored has no BLAS library mapped");
	}
	else
	{
		diag("$label: no AVX2 and FMA: the scoring backend check does not apply");
	}

	my ($threads, $blas) = proc_threads($pm);
	is($threads, 1, "$label: the postmaster ($pm) has one thread after the trainings");
	is($blas, 0, "$label: the postmaster has no BLAS library mapped");

	# ---- the concurrent phase ----

	my @workers = map { start_session($node, "tap_w$_") } 1 .. $SESSIONS;
	my $flipper = start_session($node, 'tap_flip');
	my $query = $fp_sql->('m');
	my (%raw, %seen, @bad, $hung, $maxlat, $flips, $fliperr);
	($maxlat, $flips, $fliperr) = (0, 0, '');
	my $t0 = time();
	my $retrain;
	my @flip_sql = (q{SELECT deploy('m', 1)}, q{SELECT rollback('m')});
	my $nflip = 0;
	send_query($_, $query) foreach @workers;
	send_query($flipper, $flip_sql[0]);

	while (1)
	{
		my $running = time() - $t0 < $SECONDS;
		my $busy = 0;
		foreach my $w (@workers)
		{
			if (my $r = poll_query($w))
			{
				my ($out, $err, $lat) = @$r;
				$total_queries++;
				$maxlat = $lat if $lat > $maxlat;
				# classified at the end, when version 3's fingerprint is known
				if ($err ne '')
				{
					push @bad, "$w->{app}: '$out' $err";
				}
				else
				{
					$raw{$out}++;
				}
				send_query($w, $query) if $running;
			}
			if ($w->{busy})
			{
				$busy++;
				$hung = "$w->{app} ran a query for more than $HANG s"
				  if time() - $w->{sent} > $HANG;
			}
		}
		if (my $r = poll_query($flipper))
		{
			$flips++;
			$fliperr .= $r->[1];
			# deploy a random version, or undo the last deployment
			my $next = $nflip++ % 2
			  ? $flip_sql[1]
			  : sprintf(q{SELECT deploy('m', %d)}, 1 + int(rand(scalar(keys %fp))));
			$flipper->{next} = $next;
			$flipper->{next_at} = time() + 0.05;
		}
		if ($flipper->{next} && time() >= $flipper->{next_at})
		{
			send_query($flipper, $flipper->{next}) if $running;
			$flipper->{next} = undef;
		}
		$busy++ if $flipper->{busy};
		# the retraining starts after a quarter of the time
		if (!$retrain && time() - $t0 > $SECONDS / 4)
		{
			$retrain = bg_psql($node, 'postgres', 'tap_retrain', $HANG * 2,
				qq{SELECT version FROM train_classifier('m', 'third', 'body', 'label', $opts)});
		}
		if ($retrain && !$retrain->{counted} && bg_poll($retrain))
		{
			$retrain->{counted} = 1;
			# version 3 exists now: its fingerprint, from a separate session
			my $f3 = $node->safe_psql('postgres', $fp_sql->('m@3'));
			$fp{$f3} = 3;
			push @report, sprintf('%s: version 3 trained after %.1f s of the concurrent phase',
				$label, time() - $t0);
		}
		last if !$running && !$busy && $retrain && $retrain->{done};
		last if $hung || time() - $t0 > $SECONDS + $HANG;
		usleep(2_000);
	}
	my $elapsed = time() - $t0;
	foreach my $out (keys %raw)
	{
		if (exists $fp{$out})
		{
			$seen{ $fp{$out} } += $raw{$out};
		}
		else
		{
			push @bad, "$raw{$out} queries returned '$out', the outputs of no version";
		}
	}

	ok(!$hung, "$label: no query hung") or diag($hung);
	ok(!$_->{busy}, "$label: $_->{app} finished its last query before the deadline")
	  foreach grep { $_->{busy} } @workers, $flipper;
	my $ended = grep { end_session($_) } @workers, $flipper;
	is($ended, $SESSIONS + 1, "$label: every session ended");
	is(scalar(@bad), 0, "$label: every query succeeded with the outputs of exactly one version")
	  or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
	is($retrain->{rc}, 0, "$label: the retraining during the queries succeeded")
	  or diag($retrain->{err});
	is($retrain->{out}, '3', "$label: the retraining stored version 3");
	is($fliperr, '', "$label: every deploy() and rollback() succeeded");
	my $nq = 0;
	$nq += $_ foreach values %seen;
	cmp_ok($nq, '>=', $SESSIONS, "$label: the sessions ran queries");
	ok($seen{1} && $seen{2}, "$label: queries saw both version 1 and version 2")
	  or diag(explain \%seen);
	ok($seen{3}, "$label: queries saw version 3 after the retraining")
	  or diag(explain \%seen);

	($threads, $blas) = proc_threads($pm);
	is($threads, 1, "$label: the postmaster still has one thread");
	is($blas, 0, "$label: the postmaster still has no BLAS library mapped");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
		WHERE application_name LIKE 'tap_%'}), '0', "$label: no session is left behind");
	is($node->safe_psql('postgres', $fp_sql->('m')),
		$node->safe_psql('postgres', $fp_sql->('m@' . $node->safe_psql('postgres',
			q{SELECT version FROM textclf.versions WHERE model_name = 'm' AND deployed}))),
		"$label: afterwards predict() uses the deployed version");

	push @report, sprintf('%s: %d queries in %.1f s by %d sessions (version 1: %d, 2: %d, 3: %d), '
		  . '%d deploy()/rollback() calls, slowest query %.2f s, %d failed',
		$label, $nq + scalar(@bad), $elapsed, $SESSIONS, $seen{1} // 0, $seen{2} // 0,
		$seen{3} // 0, $flips, $maxlat, scalar(@bad));
	$node->stop;
}

run_config('preloaded', 1);
run_config('not_preloaded', 0);
diag($_) foreach @report;
diag("concurrent predict queries run: $total_queries");

done_testing();
