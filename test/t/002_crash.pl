# 002_crash.pl
#	  A backend killed with SIGKILL in the middle of train_classifier()
#	  leaves the registry as it was: the server restarts itself (crash
#	  recovery), textclf.models still holds exactly the committed version 1,
#	  its predictions are unchanged to the last bit, and the killed
#	  backend's temporary spill file is gone.  Then a clean restart: the
#	  model and its predictions persist.
#
#	  Does not test a crash during the final INSERT of the version (the
#	  window is milliseconds); atomicity there is the transaction's.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TextclfTap;

datasets_dir();
# the framework turns restart_after_crash off; this test needs it
my $node = textclf_node('crash', "restart_after_crash = on\n");
load_sms($node, 'postgres', 'sms');
load_sms($node, 'postgres', 'sms_test', 'sms_spam_test.csv.gz');
$node->safe_psql('postgres', q{
	CREATE TABLE sms4 AS SELECT s.* FROM sms s CROSS JOIN generate_series(1, 4);
	CREATE TABLE probe AS
		SELECT row_number() OVER (ORDER BY body) AS id, body
		FROM (SELECT body FROM sms_test ORDER BY body LIMIT 50) s;
});

# version 1, committed
$node->safe_psql('postgres', q{SELECT train_classifier('crashy', 'sms', 'body', 'label',
	'{"epochs": 1, "hidden_size": 16, "embedding_dim": 8, "max_len": 30}')});

my $predictions = q{
	SELECT string_agg(id || ' ' || predict('crashy', body) || ' '
					  || predict_proba('crashy', body)::text
					  || ' ' || predict_proba('crashy@1', body)::text, E'\n' ORDER BY id)
	FROM probe};
my $registry = q{
	SELECT (SELECT string_agg(model_name || '@' || version || ' ' || content_id, ',')
			FROM textclf.models)
		|| ' log:' || (SELECT count(*) FROM textclf.training_log WHERE version <> 1)
		|| ' deployed:' || (SELECT string_agg(version::text, ',') FROM textclf.deployments)};
my $before = $node->safe_psql('postgres', $predictions);
my $reg_before = $node->safe_psql('postgres', $registry);
is(scalar(split /\n/, $before), 50, 'version 1 predicts 50 probe texts');
like($reg_before, qr/^crashy\@1 -?\d+ log:0 deployed:1$/, 'the registry holds version 1');

# ---- SIGKILL of a training backend ----

my $s = bg_psql($node, 'postgres', 'tap_crash', 120,
	q{SELECT train_classifier('crashy', 'sms4', 'body', 'label', '{"epochs": 500, "patience": 0}')});
my $pid = backend_pid($node, 'tap_crash');
ok(wait_for_training($node, 'tap_crash', 3), 'version 2 is training with a spill file');
ok(!bg_poll($s), 'training still runs after the wait');
ok(kill('KILL', $pid), "SIGKILL to backend $pid");
bg_finish($s, 60);
like($s->{err}, qr/server closed the connection|connection to server was lost|terminat/i,
	'the training session lost its connection');

# the postmaster reinitializes by itself
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server accepts connections again');
ok($node->log_contains(qr/terminated by signal 9/), 'the log shows the killed backend');
ok($node->log_contains(qr/all server processes terminated; reinitializing/),
	'the log shows the crash restart');

is($node->safe_psql('postgres', $registry), $reg_before,
	'after the crash the registry holds exactly version 1');
is($node->safe_psql('postgres', $predictions), $before,
	'after the crash predictions are identical');
is(tmp_file_count($node), '0', 'after the crash base/pgsql_tmp is empty');

# the model can be trained again: the next version is 2
is( $node->safe_psql('postgres', q{SELECT version FROM train_classifier('crashy', 'sms', 'body',
		'label', '{"epochs": 1, "hidden_size": 8, "embedding_dim": 8, "max_len": 20}')}),
	'2',
	'after the crash the next training stores version 2');
ok($node->safe_psql('postgres', q{SELECT drop_model_version('crashy', 2)}) eq 't',
	'version 2 dropped again');

# ---- a clean restart ----

$node->restart;
is($node->safe_psql('postgres', $registry), $reg_before,
	'after a restart the registry holds exactly version 1');
is($node->safe_psql('postgres', $predictions), $before,
	'after a restart predictions are identical');
is(tmp_file_count($node), '0', 'after a restart base/pgsql_tmp is empty');

$node->stop;
done_testing();
