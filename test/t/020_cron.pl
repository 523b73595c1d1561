# 020_cron.pl
#	  Scheduled retraining with the real pg_cron (Debian's postgresql-15-cron):
#	  schedule_retraining() and unschedule_retraining() against a node that
#	  preloads pg_cron (cron.database_name = postgres, background workers
#	  instead of TCP connections, since the test cluster listens on a Unix
#	  socket only).
#
#	  Checks: the ERROR and HINT before CREATE EXTENSION pg_cron and from a
#	  database other than cron.database_name (whose HINT, the
#	  cron.schedule_in_database() call, is then run for real); scheduling
#	  again replaces the job; a job scheduled every minute by a
#	  non-superuser really trains a new version, owned by that role (pg_cron
#	  runs a job as the role that scheduled it), and pg_cron records the run
#	  as succeeded; unschedule_retraining() removes the job (and returns
#	  false when there is none); textclf.run_scheduled_retraining() skips with
#	  a NOTICE while another session holds the model's advisory lock, and
#	  trains once it is released.
#
#	  The job's version beats the deployed one and is deployed (the default
#	  rule "if_better"; the other rules are train_classifier's own tests).
#	  Schedules other than every minute are not run.  Waits for at most two
#	  minute boundaries: about 1 to 2.5 minutes in all.

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
if (!-f '/usr/lib/postgresql/15/lib/pg_cron.so')
{
	plan skip_all => 'pg_cron is not installed (Debian: postgresql-15-cron)';
}

my $node = textclf_node(
	'cron', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
cron.log_statement = off
});

# tiny models, a fraction of a second each: $weak barely learns (versions 1
# and 2), $good learns (the job's version 3, which therefore beats the
# deployed version 1 and is deployed by the default rule "if_better")
my $weak =
  '{"epochs": 1, "hidden_size": 8, "embedding_dim": 8, "vocab_size": 500, "max_len": 30, "seed": 1, "learning_rate": 0.00001}';
my $opts =
  '{"epochs": 5, "hidden_size": 16, "embedding_dim": 16, "vocab_size": 1000, "max_len": 30, "seed": 1, "learning_rate": 0.01}';

# run $sql in $db, expecting an error; returns stderr
sub psql_error
{
	my ($db, $sql, $role) = @_;
	my ($stdout, $stderr);
	my @extra = defined $role ? ('-U', $role) : ();
	my $rc = $node->psql($db, $sql, stdout => \$stdout, stderr => \$stderr,
		extra_params => \@extra);
	return $rc == 0 ? "(no error) $stdout" : $stderr;
}

# ---- data: 600 rows of sms_spam, owned by the non-superuser alice ----

load_sms($node, 'postgres', 'sms_all');
$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE TABLE sms (id int, body text, label text);
	INSERT INTO sms SELECT row_number() OVER (), body, label
	  FROM (SELECT * FROM sms_all LIMIT 600) s;
	ALTER TABLE sms OWNER TO alice;
});

# ---- the errors without pg_cron ----

my $err = psql_error('postgres',
	"SELECT schedule_retraining('m', '* * * * *', 'sms', 'body', 'label')");
like($err, qr/ERROR:\s+extension "pg_cron" is not installed in database "postgres"/,
	'before CREATE EXTENSION pg_cron: a clear error');
like($err, qr/HINT:\s+Run CREATE EXTENSION pg_cron/, '... with a hint to create it');
$err = psql_error('postgres', "SELECT unschedule_retraining('m')");
like($err, qr/ERROR:\s+extension "pg_cron" is not installed/,
	'unschedule_retraining: the same error');

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	GRANT USAGE ON SCHEMA cron TO alice;
	CREATE DATABASE other;
});

# another database: pg_cron cannot be created there; the hint is the
# cron.schedule_in_database() call to run in database postgres
$node->safe_psql('other', qq{
	CREATE EXTENSION textclf;
	CREATE TABLE sms (body text, label text);
	COPY sms FROM PROGRAM 'gzip -dc ''@{[datasets_dir()]}/sms_spam_train.csv.gz'' | head -n 401' (FORMAT csv, HEADER);
});
$err = psql_error('other',
	"SELECT schedule_retraining('o', '* * * * *', 'sms', 'body', 'label', '$opts')");
like($err, qr/ERROR:\s+pg_cron schedules jobs from database "postgres", not from "other"/,
	'another database: a clear error');
my ($call) = $err =~ /HINT:\s+Run this in database postgres as role postgres: (SELECT cron\.schedule_in_database\(.*?\);) \(pg_cron >= 1\.4/s;
ok(defined $call, '... whose hint is a cron.schedule_in_database() call') or diag($err);
like(psql_error('other', "SELECT unschedule_retraining('o')"),
	qr/HINT:\s+Run this in database postgres as role postgres: SELECT cron\.unschedule\('textclf:o'\);/,
	'unschedule_retraining in another database: the hint is cron.unschedule()');
my $other_job = $node->safe_psql('postgres', $call // 'SELECT NULL');
like($other_job, qr/^\d+$/, 'the hint, run in database postgres, schedules the job');

# ---- scheduling (as alice) ----

# the first version, trained directly
is($node->safe_psql('postgres',
	"SET ROLE alice; SELECT version FROM train_classifier('m', 'sms', 'body', 'label', '$weak')"),
	'1', 'alice trains version 1');

my $sched = "SET ROLE alice; SELECT schedule_retraining('m', %s, 'sms', 'body', 'label', '$opts')";
my $job1 = $node->safe_psql('postgres', sprintf($sched, q{'0 3 1 1 *'}));
like($job1, qr/^\d+$/, 'schedule_retraining returns the job id');
like(psql_error('postgres', sprintf($sched, q{'every day'})),
	qr/ERROR:.*invalid schedule/, 'pg_cron rejects an invalid schedule');

# the skip path while the lock of 'm' is held (the yearly job does not run)
my $holder = $node->background_psql('postgres', timeout => 60);
$holder->query_safe('BEGIN');
$holder->query_safe(
	"SELECT pg_advisory_xact_lock(hashtext('textclf.retrain'), hashtext('m'))");
my ($stdout, $stderr);
$node->psql('postgres', qq{SET ROLE alice;
	SELECT r IS NULL FROM textclf.run_scheduled_retraining('m', 'sms', 'body', 'label', '$weak') r},
	stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/NOTICE:\s+retraining of model "m" is already running; skipped/,
	'run_scheduled_retraining: NOTICE while another session holds the lock');
is($stdout, 't', '... and returns NULL');
is($node->safe_psql('postgres', "SELECT count(*) FROM textclf.versions WHERE model_name = 'm'"),
	'1', '... without training');
$holder->query_safe('COMMIT');
$holder->quit;
is($node->safe_psql('postgres', qq{SET ROLE alice;
	SELECT version || ' ' || deployed FROM textclf.run_scheduled_retraining('m', 'sms', 'body', 'label', '$weak')}),
	'2 false', 'once the lock is released, it trains version 2 (not better: not deployed)');

# scheduling again replaces the job: now every minute
my $t_sched = time();
my $job2 = $node->safe_psql('postgres', sprintf($sched, q{'* * * * *'}));
is($job2, $job1, 'scheduling again keeps the job id');
is($node->safe_psql('postgres',
	"SELECT string_agg(jobname || ' ' || schedule || ' ' || username || ' ' || database, ',') FROM cron.job WHERE jobname = 'textclf:m'"),
	'textclf:m * * * * * alice postgres', 'one job textclf:m, every minute, run as alice');
like($node->safe_psql('postgres', "SELECT command FROM cron.job WHERE jobid = $job2"),
	qr/^SELECT textclf\.run_scheduled_retraining\('m', 'public\.sms'::pg_catalog\.regclass, 'body', 'label', '\{.*"epochs": 5.*\}'::pg_catalog\.jsonb\)$/,
	'the command calls the wrapper with the qualified relation and the options');

# ---- the job runs: wait for the next minute (or two) ----

my $ran = poll_sql($node, 'postgres', qq{
	SELECT count(*) > 0 FROM cron.job_run_details
	WHERE jobid = $job2 AND status IN ('succeeded', 'failed')}, 't', 150);
ok($ran, 'pg_cron ran the job within 150 s');
diag(sprintf('the job finished %.0f s after it was scheduled', time() - $t_sched));
my $details = $node->safe_psql('postgres',
	"SELECT status || ' ' || username || ' ' || coalesce(return_message, '') FROM cron.job_run_details WHERE jobid = $job2 ORDER BY runid LIMIT 1");
like($details, qr/^succeeded alice /, 'the run succeeded, as alice') or diag($details);
is($node->safe_psql('postgres', q{
	SELECT string_agg(version || ' ' || owner, ',' ORDER BY version)
	FROM textclf.versions WHERE model_name = 'm' AND version <= 3}),
	'1 alice,2 alice,3 alice', 'the job trained version 3, owned by alice');
is($node->safe_psql('postgres',
	"SELECT count(*) > 0 FROM textclf.training_log WHERE model_name = 'm' AND version = 3"),
	't', 'its epochs are in textclf.training_log');

my $log = slurp_file($node->logfile);
like($log, qr/LOG:\s+textclf: scheduled retraining of model "m" stored version 3 \(deployed: validation accuracy/,
	'the server log says what the job stored and whether it was deployed');
like($log, qr/LOG:\s+textclf: scheduled retraining of model "m" skipped: already running/,
	'... and the skipped run');
like($node->safe_psql('postgres', q{
	SELECT version || ' ' || deployed_by || ' ' || reason FROM textclf.deployments
	WHERE model_name = 'm' ORDER BY id DESC LIMIT 1}),
	qr/^3 alice validation accuracy [0-9.]+ beats [0-9.]+ of version 1 on \d+ rows$/,
	'the job deployed version 3 as alice: it beats the deployed version 1 ("if_better")');

# the job of database other (scheduled with the hint) ran at the same time
ok(poll_sql($node, 'other', 'SELECT count(*) >= 1 FROM textclf.versions', 't', 60),
	'the cron.schedule_in_database() job trained a version in database other');

# ---- unscheduling ----

is($node->safe_psql('postgres', "SELECT unschedule_retraining('m')"),
	'f', "another role (postgres) does not unschedule alice's job");
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'textclf:m'"),
	'1', '... which is still there');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT unschedule_retraining('m')"),
	't', 'unschedule_retraining returns true');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'textclf:m'"),
	'0', 'the job is gone');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT unschedule_retraining('m')"),
	'f', 'unscheduling again returns false');
$node->safe_psql('postgres', "SELECT cron.unschedule('textclf:o')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'no job is left');

$node->stop('fast');
done_testing();
