# 052_replica.pl
#	  A streaming hot standby serves the models of its primary: models
#	  trained on the primary reach it through WAL replay, and predict(),
#	  predict_proba() (by name, pinned 'name@N', and with a classifier
#	  value) and evaluate() there give results identical to the primary's,
#	  to the last bit, on 100 rows.  Writing to the registry on the standby
#	  (train_classifier, deploy, rollback, drop_model, drop_model_version,
#	  import_model) fails with a clean ERROR, SQLSTATE 25006
#	  (read_only_sql_transaction) and a hint to do it on the primary.  A
#	  deploy() and a rollback() on the primary change what predict() by
#	  name uses on the standby once replayed, also in a standby session that
#	  stays open (its model cache must not serve the old version).  The
#	  standby keeps everything across a restart and goes on replaying.
#
#	  Does not test logical replication, promotion of the standby or
#	  cascading standbys.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use TextclfTap;

datasets_dir();
$ENV{PG_REGRESS} //= '/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress';

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "log_statement = none\nlc_messages = 'C'\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION textclf');
$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf', "lc_messages = 'C'\n");
$standby->start;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'the standby is in recovery');

# everything below reaches the standby through WAL only
load_sms($primary, 'postgres', 'sms');
load_sms($primary, 'postgres', 'sms_test', 'sms_spam_test.csv.gz');
$primary->safe_psql('postgres', q{
	CREATE TABLE probe AS
		SELECT row_number() OVER (ORDER BY body) AS id, body, label
		FROM (SELECT body, label FROM sms_test ORDER BY body LIMIT 100) s;
	-- version 2 learns the flipped labels: its predictions differ
	CREATE TABLE flipped AS
		SELECT body, CASE label WHEN 'spam' THEN 'ham' ELSE 'spam' END AS label FROM sms;
});
my $opts = q{'{"epochs": 2, "hidden_size": 16, "embedding_dim": 8, "max_len": 40, "deploy": "always"}'};
$primary->safe_psql('postgres', qq{
	SELECT train_classifier('r', 'sms', 'body', 'label', $opts);
	SELECT train_classifier('r', 'flipped', 'body', 'label', $opts);
});

sub replay
{
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
}
replay();

# Every output of the model on the probe rows, as one text.
sub outputs
{
	my ($node, $model) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(id || ' ' || predict('$model', body) || ' '
			|| predict_proba('$model', body)::text, E'\n' ORDER BY id) FROM probe});
}

my $by_value = q{
	SELECT string_agg(p.id || ' ' || predict(m.model, p.body) || ' '
		|| predict_proba(m.model, p.body)::text || ' '
		|| predict(m.model, p.body, 0.3), E'\n' ORDER BY p.id)
	FROM probe p, textclf.models m WHERE m.model_name = 'r' AND m.version = 1};
my $eval = q{SELECT evaluate('r@1', 'probe', 'body', 'label')::text
	|| evaluate('r', 'probe', 'body', 'label')::text};
my $registry = q{SELECT string_agg(model_name || '@' || version || ' ' || content_id
	|| ' ' || deployed, ',' ORDER BY version) FROM textclf.versions};

my %out;
$out{1} = outputs($primary, 'r@1');
$out{2} = outputs($primary, 'r@2');
is(scalar(split /\n/, $out{1}), 100, 'the primary predicts 100 probe rows');
isnt($out{1}, $out{2}, 'versions 1 and 2 predict differently');
is(outputs($primary, 'r'), $out{2}, 'version 2 is deployed on the primary');

is($standby->safe_psql('postgres', $registry), $primary->safe_psql('postgres', $registry),
	'the standby has the registry of the primary');
is(outputs($standby, 'r@1'), $out{1}, 'standby: version 1 predicts exactly as on the primary');
is(outputs($standby, 'r@2'), $out{2}, 'standby: version 2 predicts exactly as on the primary');
is(outputs($standby, 'r'), $out{2}, 'standby: predict() by name uses the deployed version 2');
is($standby->safe_psql('postgres', $by_value), $primary->safe_psql('postgres', $by_value),
	'standby: predict() with a classifier value (and a threshold) is identical');
is($standby->safe_psql('postgres', $eval), $primary->safe_psql('postgres', $eval),
	'standby: evaluate() is identical');
is($standby->safe_psql('postgres', q{SELECT tokenize('r', body) FROM probe WHERE id = 7}),
	$primary->safe_psql('postgres', q{SELECT tokenize('r', body) FROM probe WHERE id = 7}),
	'standby: tokenize() is identical');

# ---- writes on the standby fail cleanly ----

# Run $sql on the standby; it must fail with SQLSTATE 25006 and a hint.
sub read_only_error
{
	my ($what, $sql, $hint) = @_;
	my ($rc, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$sql");

	isnt($rc, 0, "standby: $what fails");
	like($err, qr/ERROR:\s+25006: /, "standby: $what: SQLSTATE 25006 (read-only)")
	  or diag($err);
	unlike($err, qr/XX000|server closed|TRAP|PANIC/, "standby: $what: a clean error");
	like($err, qr/HINT:\s+\S.*primary/, "standby: $what: a hint to use the primary")
	  if $hint;
	return $err;
}

read_only_error('train_classifier()',
	qq{SELECT train_classifier('r', 'sms', 'body', 'label', $opts)}, 1);
read_only_error('train_classifier() of a new model',
	qq{SELECT train_classifier('other', 'sms', 'body', 'label', $opts)}, 1);
read_only_error('deploy()', q{SELECT deploy('r', 1)}, 1);
read_only_error('rollback()', q{SELECT rollback('r')}, 1);
read_only_error('drop_model()', q{SELECT drop_model('r')}, 1);
read_only_error('drop_model_version()', q{SELECT drop_model_version('r', 1)}, 1);
read_only_error('import_model()',
	q{SELECT import_model('copy', (SELECT export_model('r', 1)))}, 1);
read_only_error('a direct INSERT into the registry',
	q{INSERT INTO textclf.version_counters VALUES ('x', 1)}, 0);
is($standby->safe_psql('postgres', $registry), $primary->safe_psql('postgres', $registry),
	'standby: the registry is unchanged after the failed writes');
is(outputs($standby, 'r'), $out{2}, 'standby: still predicts with version 2');

# ---- deploy and rollback on the primary reach the standby ----

# a standby session that stays open across the changes
my $ses = $standby->background_psql('postgres', timeout => 120);
my $fp = q{SELECT md5(string_agg(id || ' ' || predict('r', body) || ' '
	|| predict_proba('r', body)::text, E'\n' ORDER BY id)) FROM probe};
my %md5 = map { $_ => md5_hex($out{$_}) } (1, 2);
is($ses->query_safe($fp), $md5{2}, 'open standby session: version 2');

$primary->safe_psql('postgres', q{SELECT deploy('r', 1)});
replay();
is(outputs($standby, 'r'), $out{1}, 'after deploy(r, 1) on the primary the standby predicts with version 1');
is($ses->query_safe($fp), $md5{1}, 'open standby session: follows the deploy');
is($standby->safe_psql('postgres', $registry), $primary->safe_psql('postgres', $registry),
	'the standby shows the deployment');

is($primary->safe_psql('postgres', q{SELECT rollback('r')}), '2', 'rollback() on the primary');
replay();
is(outputs($standby, 'r'), $out{2}, 'after the rollback the standby predicts with version 2 again');
is($ses->query_safe($fp), $md5{2}, 'open standby session: follows the rollback');

# a new version trained on the primary while the session is open
$primary->safe_psql('postgres', qq{SELECT train_classifier('r', 'sms', 'body', 'label',
	'{"epochs": 1, "hidden_size": 8, "embedding_dim": 8, "max_len": 20, "deploy": "always", "seed": 7}')});
$out{3} = outputs($primary, 'r@3');
replay();
is(outputs($standby, 'r'), $out{3}, 'a version trained later is deployed on the standby too');
is($ses->query_safe($fp), md5_hex($out{3}), 'open standby session: uses version 3');
$ses->quit;

# ---- restart persistence of the standby ----

$standby->restart;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'the restarted standby is in recovery');
is($standby->safe_psql('postgres', $registry), $primary->safe_psql('postgres', $registry),
	'after a restart the standby has the same registry');
is(outputs($standby, $_), $out{ substr($_, 2) }, "after a restart: $_ predicts as on the primary")
  foreach ('r@1', 'r@2', 'r@3');
is(outputs($standby, 'r'), $out{3}, 'after a restart: predict() by name uses version 3');
is($standby->safe_psql('postgres', $eval), $primary->safe_psql('postgres', $eval),
	'after a restart: evaluate() is identical');
$primary->safe_psql('postgres', q{SELECT rollback('r')});
replay();
is(outputs($standby, 'r'), $out{2}, 'after a restart the standby still follows the primary');
read_only_error('train_classifier() after a restart',
	qq{SELECT train_classifier('r', 'sms', 'body', 'label', $opts)}, 1);

# the primary restarts too: nothing lost there either
$primary->restart;
is(outputs($primary, 'r'), $out{2}, 'after a restart of the primary: version 2 deployed');
is(outputs($primary, 'r@3'), $out{3}, 'after a restart of the primary: version 3 unchanged');

$standby->stop;
$primary->stop;
done_testing();
