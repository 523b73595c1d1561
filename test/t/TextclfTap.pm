# TextclfTap.pm
#	  Helpers shared by the textclf TAP tests (test/t/*.pl): a node with the
#	  extension created, the datasets folder, loading sms_spam, a psql
#	  session running in the background (IPC::Run) that the test can poll,
#	  cancel or kill, and /proc sampling of a backend's memory.
#
#	  It does not install anything: the extension must be installed in the
#	  PostgreSQL the tests run (make install), and the tests run as the
#	  server's OS user (PostgreSQL::Test::Cluster cannot run as root).
#	  Every background session gets a hard deadline and is killed at the
#	  latest when the test script ends.

package TextclfTap;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(datasets_dir textclf_node load_sms bg_psql bg_poll bg_wait
  bg_finish backend_pid poll_sql wait_for_training tmp_file_count proc_mem
  sample_until_done);

# every background session ever started, so END can kill leftovers
my @sessions;

# The datasets folder (TEXTCLF_DATASETS), or skip the whole file.
sub datasets_dir
{
	my $dir = $ENV{TEXTCLF_DATASETS};
	if (!defined $dir || !-r "$dir/sms_spam_train.csv.gz")
	{
		plan skip_all =>
		  'TEXTCLF_DATASETS does not name the datasets folder (sms_spam_train.csv.gz)';
	}
	return $dir;
}

# A started node with CREATE EXTENSION textclf done; %conf is appended to
# postgresql.conf before the start.
sub textclf_node
{
	my ($name, $conf) = @_;

	# pg_regress --config-auth is needed by init(); make prove_installcheck
	# sets PG_REGRESS, a bare prove does not
	$ENV{PG_REGRESS} //=
	  '/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"log_statement = none\nlc_messages = 'C'\n" . ($conf // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION textclf');
	return $node;
}

# Load sms_spam_train into table $table (body text, label text).
sub load_sms
{
	my ($node, $db, $table, $file) = @_;
	my $path = datasets_dir() . '/' . ($file // 'sms_spam_train.csv.gz');

	$path =~ s/'/''/g;
	$node->safe_psql($db, qq{
		CREATE TABLE $table (body text, label text);
		COPY $table (body, label) FROM PROGRAM 'gzip -dc ''$path''' (FORMAT csv, HEADER);
	});
	return $node->safe_psql($db, "SELECT count(*) FROM $table");
}

# Start psql running @sql (each one -c) in the background, with
# application_name $app so that pg_stat_activity finds its backend; psql
# stops at the first error unless @sql starts with { on_error_stop => 0 }.
# Returns a session hash; it is killed after $timeout seconds at the latest.
sub bg_psql
{
	my ($node, $db, $app, $timeout, @sql) = @_;
	my %s = (out => '', err => '', start => time(), app => $app);
	my $opt = ref $sql[0] eq 'HASH' ? shift @sql : {};
	my $stop = $opt->{on_error_stop} // 1;
	my @cmd = (
		$node->installed_command('psql'), '-XAtq', '-v', "ON_ERROR_STOP=$stop",
		'-d', $node->connstr($db) . " application_name=$app");

	push @cmd, '-c', $_ foreach @sql;
	{
		local %ENV = $node->_get_env();
		$s{timer} = IPC::Run::timer($timeout);
		$s{h} = IPC::Run::start(\@cmd, '<', \undef, '>', \$s{out},
			'2>', \$s{err}, $s{timer});
		$s{timer}->start($timeout);
	}
	push @sessions, \%s;
	return \%s;
}

# Pump a background session without blocking; true once psql has exited.
sub bg_poll
{
	my ($s) = @_;

	return 1 if $s->{done};
	if ($s->{timer}->is_expired)
	{
		$s->{h}->kill_kill;
		$s->{done} = 1;
		$s->{timed_out} = 1;
		$s->{end} = time();
		return 1;
	}
	if ($s->{h}->pumpable)
	{
		eval { $s->{h}->pump_nb; };
	}
	if (!$s->{h}->pumpable)
	{
		eval { $s->{h}->finish; };
		$s->{rc} = $s->{h}->result(0) if !$@;
		chomp $s->{out};
		$s->{done} = 1;
		$s->{end} = time();
	}
	return $s->{done};
}

# Poll until psql exited or its stderr matches $re (if given), or $secs
# passed; returns the seconds waited, or undef on time out.
sub bg_wait
{
	my ($s, $secs, $re) = @_;
	my $t0 = time();

	while (time() - $t0 < $secs)
	{
		bg_poll($s);
		return time() - $t0 if $s->{done} || (defined $re && $s->{err} =~ $re);
		usleep(10_000);
	}
	return undef;
}

# Wait for the session to end (killing it after $secs).
sub bg_finish
{
	my ($s, $secs) = @_;

	bg_wait($s, $secs // 60);
	if (!$s->{done})
	{
		$s->{h}->kill_kill;
		$s->{done} = 1;
		$s->{timed_out} = 1;
	}
	return $s;
}

END
{
	foreach my $s (@sessions)
	{
		eval { $s->{h}->kill_kill unless $s->{done}; };
	}
}

# The PID of the backend of application $app (waits up to 60 s for it).
sub backend_pid
{
	my ($node, $app) = @_;

	poll_sql($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app'",
		't', 60)
	  or die "no backend for application $app";
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$app'");
}

# Wait until the backend of $app runs train_classifier (at most 60 s) and
# its temporary spill file exists (at most 20 s more), then $extra more
# seconds; returns true if both were seen.
sub wait_for_training
{
	my ($node, $app, $extra) = @_;
	my $ok = poll_sql($node, 'postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE application_name = '$app' AND state = 'active'
		  AND query LIKE '%train_classifier%'}, 't', 60)
	  && poll_sql($node, 'postgres',
		'SELECT count(*) > 0 FROM pg_catalog.pg_ls_tmpdir()', 't', 20);
	sleep($extra) if $extra;
	return $ok;
}

# Run $query until it returns $expected, at most $secs seconds (the
# framework's poll_query_until waits 180 s); true if it did.
sub poll_sql
{
	my ($node, $db, $query, $expected, $secs) = @_;
	my $t0 = time();

	while (1)
	{
		my ($rc, $out) = $node->psql($db, $query);
		return 1 if $rc == 0 && $out eq $expected;
		return 0 if time() - $t0 > $secs;
		usleep(100_000);
	}
}

# The number of files in base/pgsql_tmp.
sub tmp_file_count
{
	my ($node, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		'SELECT count(*) FROM pg_catalog.pg_ls_tmpdir()');
}

# RssAnon and VmHWM of process $pid in kB, or () if it is gone.
sub proc_mem
{
	my ($pid) = @_;
	my %m;

	open(my $fh, '<', "/proc/$pid/status") or return ();
	while (my $l = <$fh>)
	{
		$m{$1} = $2 if $l =~ /^(RssAnon|VmHWM|VmRSS):\s+(\d+)\s+kB/;
	}
	close $fh;
	return ($m{RssAnon} // 0, $m{VmHWM} // 0);
}

# Sample the memory of backend $pid every $interval s while session $s runs;
# returns (peak RssAnon kB, last VmHWM kB, number of samples).
sub sample_until_done
{
	my ($s, $pid, $interval, $secs) = @_;
	my ($peak, $hwm, $n) = (0, 0, 0);
	my $t0 = time();

	while (!bg_poll($s) && time() - $t0 < $secs)
	{
		my ($anon, $vmhwm) = proc_mem($pid);
		if (defined $anon)
		{
			$peak = $anon if $anon > $peak;
			$hwm = $vmhwm if $vmhwm > $hwm;
			$n++;
		}
		usleep(int($interval * 1e6));
	}
	return ($peak, $hwm, $n);
}

1;
