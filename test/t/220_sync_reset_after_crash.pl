# zendesk_sync_reset() of a stream whose last run was interrupted (the
# worker was killed): the reset itself works (the next sync exports the
# stream again from the start and ends ok), and the interrupted run's row
# in zendesk_sync_runs must not stay 'running' for ever.
#
# The fault campaign (test/campaign) found this one: the reset used to turn
# the state row's 'running' into 'failed' and leave the interrupted run's
# zendesk_sync_runs row 'running'; the next run could not tell, since the
# state no longer said running.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZendeskMock;

my $mock = ZendeskMock->start(args => [ '--tickets', 60, '--users', 10, '--organizations', 5 ]);
my $node = PostgreSQL::Test::Cluster->new('reset_after_crash');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', "zendesk_fdw.holdback = 2\nrestart_after_crash = on\n");
$node->start;
my $db = 'postgres';
$mock->setup_server($node, $db, options => { page_size => 10 });
sub sql { return $node->safe_psql($db, $_[0]); }

# hold the 3rd tickets request, kill the worker inside it
$mock->add_fault({ kind => 'slow', path => '/incremental/tickets', after => 2, delay => 20 });
is(sql(q{SELECT string_agg(status, ',') FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)}),
	'started', 'zendesk_sync(wait => false) started');
my $run;
ok( ZendeskMock::poll_until(60, sub {
		sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync'
		      AND query LIKE '%tickets fetching, page 2%'}) eq '1' }),
	'the worker is inside the third tickets request');
my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync'});
$run = sql(q{SELECT run_id FROM zendesk_sync_state WHERE stream = 'tickets'});
my $offset = -s $node->logfile;
ok(kill('KILL', $pid), "SIGKILL the worker (pid $pid)");
$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
$node->poll_query_until($db, 'SELECT true');
is(sql(qq{SELECT status FROM zendesk_sync_runs WHERE run_id = $run AND stream = 'tickets'}),
	'running', 'after the crash the interrupted run still says running');

$mock->clear_faults;
is(sql(q{SELECT zendesk_sync_reset('zendesk', 'tickets')}), '1', 'zendesk_sync_reset of tickets');
is(sql(q{SELECT status FROM zendesk_sync_state WHERE stream = 'tickets'}),
	'failed', 'the reset marks the state row failed');
is(sql(q{SELECT string_agg(status, ',') FROM zendesk_sync('zendesk', ARRAY['tickets'])}),
	'ok', 'the next sync of tickets ends ok');
$mock->is_equal_to_account($node, $db, 'tickets', 'after reset and resync');

is(sql(qq{SELECT status FROM zendesk_sync_runs WHERE run_id = $run AND stream = 'tickets'}),
	'failed', 'the interrupted run is marked failed');
is(sql(q{SELECT count(*) FROM zendesk_sync_runs WHERE status = 'running'}),
	'0', 'no zendesk_sync_runs row is left running');
is(sql(q{SELECT count(*) FROM zendesk_sync_state WHERE status = 'running'}),
	'0', 'no zendesk_sync_state row is left running');

$node->stop;
$mock->stop;
done_testing();
