# zendesk_sync() scheduled by pg_cron.
#
# A cluster with shared_preload_libraries = 'pg_cron' runs
# SELECT zendesk_sync('zendesk') on a schedule: the first scheduled run
# fills the local tables (equal to the mock account) and leaves every
# stream 'ok'; a ticket changed in the mock afterwards arrives with the next
# scheduled run (last_success_at newer, cursor moved).  pg_cron 1.5+ accepts
# '[1-59] seconds' schedules; Debian 12 ships 1.4, where the finest schedule
# is a minute, so the test tries a seconds schedule first and falls back to
# '* * * * *' (about two minutes of waiting).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use ZendeskMock;

my @STREAMS = qw(tickets ticket_events users organizations);
# a minute schedule needs up to 60 s to its first run, plus the run
my $RUN_TIMEOUT = 150;

my $node = PostgreSQL::Test::Cluster->new('pg_cron');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
my $available = -f $node->config_data('--pkglibdir') . '/pg_cron.so';
plan skip_all => 'pg_cron is not installed (Debian package postgresql-15-cron)'
  unless $available;

my $mock = ZendeskMock->start(
	args => [
		'--tickets', 60, '--users', 20, '--organizations', 10,
		'--events-per-ticket', 2
	]);

# pg_cron connects with libpq to cron.host; the test cluster listens on a
# unix socket directory only
my $socket_dir = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$socket_dir'
zendesk_fdw.holdback = 2
});
$node->start;
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

$node->safe_psql($db, 'CREATE EXTENSION pg_cron');
$mock->setup_server($node, $db, options => { page_size => 20 });
my $cron_version = sql(q{SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'});
note("pg_cron extension version $cron_version");

# a seconds schedule where pg_cron supports it, else every minute
my $command = q{SELECT zendesk_sync('zendesk')};
my ($rc, $jobid, $err) = $node->psql($db,
	qq{SELECT cron.schedule('zendesk-sync', '5 seconds', \$\$$command\$\$)});
my $schedule = '5 seconds';
if ($rc != 0)
{
	like($err, qr/invalid schedule/, "pg_cron $cron_version refuses a seconds schedule");
	$schedule = '* * * * *';
	$jobid = sql(qq{SELECT cron.schedule('zendesk-sync', '$schedule', \$\$$command\$\$)});
}
like($jobid, qr/^\d+$/, "the sync is scheduled ('$schedule', job $jobid)");
is(sql(qq{SELECT schedule || '|' || command || '|' || database FROM cron.job WHERE jobid = $jobid}),
	"$schedule|$command|$db", 'cron.job has the schedule, command and database');

sub succeeded_runs
{
	return sql(qq{SELECT count(*) FROM cron.job_run_details
	              WHERE jobid = $jobid AND status = 'succeeded'});
}

sub streams_ok
{
	return sql(q{SELECT count(*) FROM zendesk_sync_state WHERE server = 'zendesk' AND status = 'ok'});
}

sub failed_runs
{
	return sql(qq{SELECT count(*) FROM cron.job_run_details
	              WHERE jobid = $jobid AND status = 'failed'});
}

# ------------------------------------------------- the first scheduled run

my $t0 = Time::HiRes::time();
# (a failed run ends the wait early; it fails the check below)
ZendeskMock::poll_until($RUN_TIMEOUT,
	sub { failed_runs() > 0 || (succeeded_runs() >= 1 && streams_ok() == 4) }, 0.5);
my $first = failed_runs() == 0 && succeeded_runs() >= 1 && streams_ok() == 4;
ok($first, sprintf('a scheduled run succeeded and every stream is ok (after %.0f s)',
		Time::HiRes::time() - $t0))
  or die('no scheduled zendesk_sync run succeeded: '
	  . sql(qq{SELECT string_agg(status || ': ' || coalesce(return_message, ''), '; ')
	           FROM cron.job_run_details WHERE jobid = $jobid}));
# pg_cron reports "4 rows" (libpq) or "SELECT 4" (background workers)
like( sql(qq{SELECT command || '|' || return_message FROM cron.job_run_details
             WHERE jobid = $jobid AND status = 'succeeded' ORDER BY runid LIMIT 1}),
	qr/^\Q$command\E\|(?:4 rows|SELECT 4)$/, 'the run returned the 4 stream rows of zendesk_sync()');
is(sql(q{SELECT string_agg(stream || ':' || status, ',' ORDER BY stream) FROM zendesk_sync_runs
          WHERE run_id = (SELECT min(run_id) FROM zendesk_sync_runs)}),
	'organizations:ok,ticket_events:ok,tickets:ok,users:ok',
	'zendesk_sync_runs has the scheduled run, ok for every stream');
$mock->is_equal_to_account($node, $db, $_, 'after the first scheduled run') for @STREAMS;

# ------------------------------------ a change arrives with the next run

my ($success_before, $cursor_before) = split /\|/, sql(
	q{SELECT last_success_at, cursor FROM zendesk_sync_state
	  WHERE server = 'zendesk' AND stream = 'tickets'});
my $ticket = $mock->account('tickets')->[0]{id};
my $at = int(Time::HiRes::time()) - 8;
$mock->mutate('tickets',
	{ op => 'update', id => $ticket, at => $at,
	  changes => { subject => 'changed for the next scheduled run' } });
$mock->mutate('tickets',
	{ op => 'create', id => 990001, at => $at,
	  changes => { subject => 'created for the next scheduled run' } });

$t0 = Time::HiRes::time();
my $next = ZendeskMock::poll_until($RUN_TIMEOUT,
	sub {
		sql(qq{SELECT count(*) FROM zendesk.tickets
		       WHERE (id = $ticket AND subject = 'changed for the next scheduled run')
		          OR (id = 990001 AND subject = 'created for the next scheduled run')}) eq '2'
		  && streams_ok() == 4;
	}, 0.5);
ok($next, sprintf('the next scheduled run brought the changed and the new ticket (after %.0f s)',
		Time::HiRes::time() - $t0));
my ($success_after, $cursor_after) = split /\|/, sql(
	q{SELECT last_success_at, cursor FROM zendesk_sync_state
	  WHERE server = 'zendesk' AND stream = 'tickets'});
is( sql(qq{SELECT '$success_after'::timestamptz > '$success_before'::timestamptz}),
	't', "the tickets state's last_success_at moved on ($success_before -> $success_after)");
isnt($cursor_after, $cursor_before, "the tickets cursor moved on");
my @after = ZendeskMock::decode_cursor($cursor_after);
is_deeply(\@after, [ $at, 990001 ], 'the new cursor points at the newest change')
  or diag("cursor $cursor_after");
cmp_ok(succeeded_runs(), '>=', 2, 'pg_cron recorded another succeeded run');
is(failed_runs(), '0', 'no scheduled run failed');
$mock->is_equal_to_account($node, $db, $_, 'after the next scheduled run') for @STREAMS;

# ------------------------------------------------------------- unschedule

is(sql(q{SELECT cron.unschedule('zendesk-sync')}), 't', 'cron.unschedule of the sync');
is(sql('SELECT count(*) FROM cron.job'), '0', 'no job is left scheduled');

$node->stop;
$mock->stop;
done_testing();
