# 004_dump_restore.pl
#	  The registry survives pg_dump and a restore with psql into a new
#	  database: textclf.models, textclf.deployments, textclf.training_log
#	  and the deployment id sequence are extension configuration tables,
#	  so pg_dump writes their rows after CREATE EXTENSION.  In the new
#	  database both versions predict exactly as before (50 texts, labels and
#	  probabilities, deployed and pinned versions), textclf.versions, the
#	  training log, the version counters and the deployment history are the
#	  same, and training goes on with the next version and deployment id.  Also a COPY (FORMAT binary) round trip of
#	  textclf.models (classifier_send / classifier_recv) into a fresh
#	  database.
#
#	  Does not test pg_restore of custom-format archives (same SQL inside)
#	  or cross-version upgrades.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TextclfTap;

datasets_dir();
my $node = textclf_node('dump');
my $tmp = PostgreSQL::Test::Utils::tempdir();

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION textclf');
load_sms($node, 'src', 'sms');
load_sms($node, 'src', 'sms_test', 'sms_spam_test.csv.gz');
$node->safe_psql('src', q{
	CREATE TABLE probe AS
		SELECT row_number() OVER (ORDER BY body) AS id, body
		FROM (SELECT body FROM sms_test ORDER BY body LIMIT 50) s;
});

my $small = '"deploy": "always", "hidden_size": 16, "embedding_dim": 8, "max_len": 30';
# v1, v2 (retrained), v3 dropped again: v2 is deployed, the id sequence is
# past the ids left in textclf.deployments
$node->safe_psql('src', qq{
	SELECT train_classifier('dm', 'sms', 'body', 'label', '{"epochs": 1, $small}');
	SELECT train_classifier('dm', 'sms', 'body', 'label', '{"epochs": 2, "seed": 7, $small}');
	SELECT train_classifier('other', 'sms', 'body', 'label', '{"epochs": 1, "tokenizer": "char", $small}');
	SELECT train_classifier('dm', 'sms', 'body', 'label', '{"epochs": 1, "seed": 3, $small}');
	SELECT drop_model_version('dm', 3);
});

my $predictions = q{
	SELECT string_agg(id || ' ' || predict('dm', body) || ' ' || predict_proba('dm', body)::text
					  || ' ' || predict('dm@1', body) || ' ' || predict_proba('dm@1', body)::text
					  || ' ' || predict_proba('other', body)::text, E'\n' ORDER BY id)
	FROM probe};
my $versions = q{
	SELECT string_agg(concat_ws(' ', model_name, version, owner, created_at, source_relation,
								text_column, label_column, options, labels, metrics,
								content_id, deployed), E'\n' ORDER BY model_name, version)
	FROM textclf.versions};
my $deployments = q{
	SELECT string_agg(concat_ws(' ', id, model_name, version, deployed_at, deployed_by, reason),
					  E'\n' ORDER BY id)
	FROM textclf.deployments};
my $log = q{
	SELECT string_agg(concat_ws(' ', model_name, version, epoch, loss, accuracy, validation_loss,
								validation_accuracy, seconds, logged_at),
					  E'\n' ORDER BY model_name, version, epoch)
	FROM textclf.training_log};
my $weights = q{
	SELECT string_agg(model_name || '@' || version || ' ' || md5(model::bytea)
					  || ' ' || (classifier_content_id(model) = to_hex(content_id)),
					  E'\n' ORDER BY model_name, version)
	FROM textclf.models};

my $counters = q{
	SELECT string_agg(model_name || ' ' || last_version, ',' ORDER BY model_name)
	FROM textclf.version_counters};
my %queries = (
	predictions => $predictions,
	versions    => $versions,
	deployments => $deployments,
	log         => $log,
	weights     => $weights,
	counters    => $counters);
my %before = map { $_ => $node->safe_psql('src', $queries{$_}) } keys %queries;
is(scalar(split /\n/, $before{predictions}), 50, 'source: 50 predictions');
like($before{versions}, qr/^dm 1 [^\n]* f\ndm 2 [^\n]* t\nother 1 [^\n]* t$/,
	'source: dm has versions 1 and 2, 2 deployed');
is(scalar(split /\n/, $before{deployments}), 3, 'source: 3 deployment rows');
unlike($before{weights}, qr/ f$/m, 'source: content ids match the classifiers');
is($before{counters}, 'dm 3,other 1', 'source: version counters');

# ---- pg_dump | psql into a new database ----

my $dump = "$tmp/src.sql";
$node->command_ok([ 'pg_dump', '-f', $dump, '-d', 'src' ], 'pg_dump');
$node->command_ok([ 'createdb', 'dst' ], 'createdb');
my ($stdout, $stderr);
my $ok = $node->psql('dst', undef, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $dump ],
	stdout => \$stdout, stderr => \$stderr);
is($ok, 0, 'the dump restores without error') or diag($stderr);
unlike($stderr // '', qr/ERROR/, 'no ERROR while restoring');

foreach my $what (sort keys %queries)
{
	is($node->safe_psql('dst', $queries{$what}), $before{$what}, "restored: $what identical");
}
is($node->safe_psql('dst', q{SELECT string_agg(model_name || ':' || deployed_version || '/' || latest_version, ',') FROM list_models()}),
	'dm:2/2,other:1/1', 'restored: list_models');

# training goes on: version 4 (version numbers are never reused, and
# textclf.version_counters is dumped too), and a deployment id past the
# dumped sequence
is( $node->safe_psql('dst', qq{
		SELECT version FROM train_classifier('dm', 'sms', 'body', 'label', '{"epochs": 1, $small}');
		}),
	'4',
	'restored: the next training stores version 4, not the dropped number 3');
is($node->safe_psql('dst', q{SELECT max(id) FROM textclf.deployments}),
	'5', 'restored: the deployment id sequence continued past the dropped id 4');

# ---- COPY (FORMAT binary) round trip of textclf.models ----

my $bin = "$tmp/models.bin";
$node->safe_psql('src', "COPY textclf.models TO '$bin' (FORMAT binary)");
ok(-s $bin, 'COPY textclf.models TO a binary file');
$node->safe_psql('postgres', 'CREATE DATABASE bin');
$node->safe_psql('bin', 'CREATE EXTENSION textclf');
$node->safe_psql('bin', "COPY textclf.models FROM '$bin' (FORMAT binary)");
is($node->safe_psql('bin', $weights), $before{weights},
	'binary copy: the same model bytes and content ids');
# pinned versions only: the copy has no deployments
my $pinned = q{
	SELECT string_agg(id || ' ' || predict('dm@2', body) || ' ' || predict_proba('dm@2', body)::text
					  || ' ' || predict_proba('dm@1', body)::text, E'\n' ORDER BY id)
	FROM probe};
my $pinned_before = $node->safe_psql('src', $pinned);
$node->safe_psql('bin', 'CREATE TABLE probe (id bigint, body text)');
$node->safe_psql('src', "COPY probe TO '$tmp/probe.bin' (FORMAT binary)");
$node->safe_psql('bin', "COPY probe FROM '$tmp/probe.bin' (FORMAT binary)");
is($node->safe_psql('bin', $pinned), $pinned_before, 'binary copy: identical predictions');

# and into a plain table, predicting with the classifier values themselves
$node->safe_psql('bin', q{
	CREATE TABLE m2 (LIKE textclf.models);
	COPY m2 FROM '} . $bin . q{' (FORMAT binary);
});
is( $node->safe_psql('bin', q{
		SELECT string_agg(p.id || ' ' || predict('dm@2', p.body) || ' ' || predict_proba('dm@2', p.body)::text
						  || ' ' || predict_proba(m1.model, p.body)::text, E'\n' ORDER BY p.id)
		FROM probe p, m2 m1, m2 mm
		WHERE m1.model_name = 'dm' AND m1.version = 1
		  AND mm.model_name = 'dm' AND mm.version = 2
		  AND predict(mm.model, p.body) = predict('dm@2', p.body)
		  AND predict_proba(mm.model, p.body) = predict_proba('dm@2', p.body)}),
	$pinned_before,
	'binary copy into a plain table: classifier values predict identically');

$node->stop;
done_testing();
