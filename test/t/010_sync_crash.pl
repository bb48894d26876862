# zendesk_sync() recovery after crashes.
#
# The worker commits each page's upserts together with the stream's
# checkpoint (zendesk_sync_state.cursor / start_time).  Whatever kills it,
# the next run must mark the interrupted run failed, resume from the stored
# checkpoint (never from start_time for a cursor export), and end with the
# local tables equal to the mock account, including records that changed in
# the mock between the crash and the rerun.
#
#   a. kill -9 of the worker inside a slow HTTP request (crash recovery of
#      the whole cluster follows)
#   b. kill -9 of the worker while it writes a page (a slow trigger): the
#      page in flight is rolled back, the checkpoint never points past the
#      committed rows
#   c. pg_ctl stop -m immediate in the middle of a multi-page time export
#
# Every observation of zendesk_sync_state also checks that no checkpoint
# moves backwards (cursor position decoded as (ts, id); start_time).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use ZendeskMock;

my $TIMEOUT = 60;      # bound of every poll, seconds
my @STREAMS = qw(tickets ticket_events users organizations);
my %CURSOR_STREAM = (tickets => 1, users => 1);

my $mock = ZendeskMock->start(
	args => [
		'--tickets', 200, '--users', 60, '--organizations', 30,
		'--events-per-ticket', 2
	]);

my $node = PostgreSQL::Test::Cluster->new('sync_crash');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf(
	'postgresql.conf', q{
zendesk_fdw.holdback = 2
restart_after_crash = on
});
$node->start;
my $db = 'postgres';
$mock->setup_server($node, $db, options => { page_size => 20 });

# ---------------------------------------------------------------- helpers

sub sql { return $node->safe_psql($db, $_[0]); }

# zendesk_sync_state as { stream => { status, cursor, start_time (epoch),
# pages, records, run_id } }
sub sync_state
{
	my %s;
	my $out = sql(
		q{SELECT stream, status, coalesce(cursor, ''),
		         coalesce(extract(epoch FROM start_time)::bigint::text, ''),
		         pages, records, coalesce(run_id::text, '')
		  FROM zendesk_sync_state WHERE server = 'zendesk'});
	for my $line (split /\n/, $out)
	{
		my ($stream, @v) = split /\|/, $line, -1;
		my %r;
		@r{qw(status cursor start_time pages records run_id)} = @v;
		$s{$stream} = \%r;
	}
	return \%s;
}

# checkpoint monotonicity: the last position seen per stream
my (%last_pos, @backwards);
my $observations = 0;

sub position_of
{
	my ($stream, $row) = @_;
	if ($CURSOR_STREAM{$stream})
	{
		my @p = ZendeskMock::decode_cursor($row->{cursor});
		return @p ? \@p : undef;
	}
	return $row->{start_time} ne '' ? [ $row->{start_time} + 0, 0 ] : undef;
}

sub observe
{
	my ($label) = @_;
	my $st = sync_state();
	for my $stream (sort keys %$st)
	{
		my $pos = position_of($stream, $st->{$stream});
		next unless $pos;
		$observations++;
		my $prev = $last_pos{$stream};
		if ($prev
			&& ($pos->[0] < $prev->[0]
				|| ($pos->[0] == $prev->[0] && $pos->[1] < $prev->[1])))
		{
			push @backwards,
			  "$label: $stream moved from ($prev->[0], $prev->[1]) to ($pos->[0], $pos->[1])";
		}
		$last_pos{$stream} = $pos;
	}
	return $st;
}

# a reset legitimately moves the position back: forget what we saw
sub forget_positions { delete @last_pos{@_}; }

sub worker
{
	my $out = sql(
		q{SELECT pid, query FROM pg_stat_activity
		  WHERE backend_type = 'zendesk_fdw sync'});
	return split /\|/, $out, 2;
}

# poll with observations of the state on every round
sub wait_until
{
	my ($what, $cond) = @_;
	my $ok = ZendeskMock::poll_until($TIMEOUT, sub { observe($what); $cond->() });
	ok($ok, "reached: $what") or die("timed out waiting for: $what");
	return $ok;
}

# kill -9 a server process; wait for the crash restart to complete
sub kill9_and_wait_restart
{
	my ($pid, $label) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$label: SIGKILL sent to the sync worker (pid $pid)");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	$node->poll_query_until($db, 'SELECT true')
	  or die("$label: the server did not come back after the crash");
	like(
		slurp_file($node->logfile, $offset),
		qr/background worker "zendesk_fdw sync" \(PID $pid\) was terminated by signal 9/,
		"$label: the postmaster saw the worker die and restarted the cluster");
	return;
}

# The checkpoint covers exactly the committed rows: the local table holds
# every account record up to the checkpoint and none after it.  Cursor
# exports: (change time, id) <= the cursor's (ts, id).  Time exports with
# per_page < 1000: a page ends with a whole second, so change time <
# start_time.
sub check_rows_match_checkpoint
{
	my ($label, $resource, $key, $covered) = @_;
	my @expected = sort { $a <=> $b } map { $_->{id} }
	  grep { $covered->($_->{$key}, $_->{id}) } @{ $mock->account($resource) };
	my @local_ids = split /\n/, sql("SELECT id FROM zendesk.$resource ORDER BY id");
	ok(@expected > 0, "$label: the committed pages hold some $resource");
	is_deeply(\@local_ids, \@expected,
		"$label: the local $resource are exactly those up to the checkpoint");
	return;
}

sub check_tickets_match_cursor
{
	my ($label, $cursor) = @_;
	my ($cts, $cid) = ZendeskMock::decode_cursor($cursor);
	note("$label: cursor checkpoint at ($cts, $cid)");
	check_rows_match_checkpoint($label, 'tickets', 'generated_timestamp',
		sub { $_[0] < $cts || ($_[0] == $cts && $_[1] <= $cid) });
	return;
}

# Mutations between a crash and the rerun, with change times strictly
# increasing over the whole test (the export position orders by change
# time and id) and old enough for both hold-backs.
my $last_at = 0;
my $tickets_before = $mock->account('tickets');
my @ticket_ids = map { $_->{id} } grep { $_->{status} ne 'deleted' } @$tickets_before;
my @user_ids = map { $_->{id} } grep { $_->{active} } @{ $mock->account('users') };
my @org_ids = map { $_->{id} } grep { !defined $_->{deleted_at} } @{ $mock->account('organizations') };

sub next_at
{
	my $at = int(Time::HiRes::time()) - 8;
	$at = $last_at + 1 if $at <= $last_at;
	# wait (bounded) until the mock would show a change at $at: now - 3 >= at
	ZendeskMock::poll_until(30, sub { int(Time::HiRes::time()) - 3 >= $at }, 0.2);
	$last_at = $at;
	return $at;
}

my $case_no = 0;

sub mutate_between
{
	my ($label) = @_;
	my $n = $case_no++;
	my %m = (
		updated_ticket => $ticket_ids[ 2 * $n ],
		deleted_ticket => $ticket_ids[ 2 * $n + 1 ],
		created_ticket => 990001 + $n,
		user           => $user_ids[$n],
		org            => $org_ids[$n],
		subject        => "changed after crash $label",
		user_name      => "Renamed after crash $label");
	$mock->mutate('tickets',
		{ op => 'update', id => $m{updated_ticket}, at => next_at(),
		  changes => { subject => $m{subject}, status => 'pending' } });
	$mock->mutate('tickets',
		{ op => 'delete', id => $m{deleted_ticket}, at => next_at() });
	$mock->mutate('tickets',
		{ op => 'create', id => $m{created_ticket}, at => next_at(),
		  changes => { subject => "created after crash $label" } });
	$mock->mutate('users',
		{ op => 'update', id => $m{user}, at => next_at(),
		  changes => { name => $m{user_name} } });
	$mock->mutate('organizations',
		{ op => 'delete', id => $m{org}, at => next_at() });
	return \%m;
}

sub check_mutations_arrived
{
	my ($label, $m) = @_;
	is( sql("SELECT subject || '|' || status FROM zendesk.tickets WHERE id = $m->{updated_ticket}"),
		"$m->{subject}|pending",
		"$label: a ticket updated after the crash is updated locally");
	is(sql("SELECT status FROM zendesk.tickets WHERE id = $m->{deleted_ticket}"),
		'deleted', "$label: a ticket deleted after the crash is deleted locally");
	is( sql("SELECT subject FROM zendesk.tickets WHERE id = $m->{created_ticket}"),
		"created after crash $label",
		"$label: a ticket created after the crash arrived");
	is( sql("SELECT data->>'name' FROM zendesk.users WHERE id = $m->{user}"),
		$m->{user_name}, "$label: a user updated after the crash is updated locally");
	is( sql("SELECT data->>'deleted_at' IS NOT NULL FROM zendesk.organizations WHERE id = $m->{org}"),
		't', "$label: an organization deleted after the crash is deleted locally");
	return;
}

# Rerun every stream (wait => true) and check the outcome.  %exp:
# interrupted => stream whose old run must be marked failed, old_run,
# cursor => the checkpoint the first tickets/users request must carry,
# start_time => (stream, epoch) the first time request must carry.
sub rerun_and_check
{
	my ($label, %exp) = @_;
	my $stream = $exp{interrupted};
	$mock->clear_faults;
	$mock->clear_requests;
	my $out = sql(
		q{SELECT stream, status, coalesce(message, '') FROM zendesk_sync('zendesk')});
	my %res = map { my @f = split /\|/, $_, -1; ($f[0] => { status => $f[1], message => $f[2] }) }
	  split /\n/, $out;
	is_deeply([ map { $res{$_}{status} // 'missing' } @STREAMS ],
		[ ('ok') x 4 ], "$label: the rerun ends ok for every stream")
	  or diag($out);
	like($res{$stream}{message}, qr/resumed after run $exp{old_run} was interrupted/,
		"$label: the rerun says it resumed after the interrupted run");
	is( sql(qq{SELECT status || '|' || message FROM zendesk_sync_runs
	           WHERE run_id = $exp{old_run} AND stream = '$stream'}),
		'failed|interrupted: the sync worker ended before finishing this stream',
		"$label: the interrupted run is marked failed");

	my $path = $stream eq 'tickets' ? '/api/v2/incremental/tickets/cursor'
	  : "/api/v2/incremental/$stream";
	my @reqs = grep { index($_->{path}, $path) == 0 } @{ $mock->requests };
	ok(@reqs >= 1, "$label: the rerun requested $stream");
	if (defined $exp{cursor})
	{
		is($reqs[0]{query}{cursor}, $exp{cursor},
			"$label: the rerun's first $stream request carries the stored cursor");
		is(scalar(grep { exists $_->{query}{start_time} } @reqs), 0,
			"$label: no $stream request of the rerun uses start_time");
	}
	if (defined $exp{start_time})
	{
		is($reqs[0]{query}{start_time}, $exp{start_time},
			"$label: the rerun's first $stream request starts at the stored start_time");
	}
	observe("$label rerun");

	$mock->is_equal_to_account($node, $db, $_, $label) for @STREAMS;
	is(sql(q{SELECT count(*) FROM zendesk_sync_state WHERE status = 'running'}),
		'0', "$label: no zendesk_sync_state row is left running");
	is(sql(q{SELECT count(*) FROM zendesk_sync_runs WHERE status = 'running'}),
		'0', "$label: no zendesk_sync_runs row is left running");
	return;
}

# ------------------------------------------------ a. kill -9 during HTTP

{
	my $label = 'kill -9 in HTTP';
	$mock->clear_requests;
	$mock->add_fault(
		{ kind => 'slow', path => '/incremental/tickets', after => 3, delay => 20 });
	is( sql(q{SELECT string_agg(status, ',') FROM zendesk_sync('zendesk', wait => false)}),
		'started,started,started,started', "$label: zendesk_sync(wait => false) started");
	wait_until("$label: worker inside the slow 4th tickets request after 3 pages",
		sub {
			my $st = sync_state();
			return $st->{tickets} && $st->{tickets}{pages} == 3
			  && $mock->slow_request_in_flight('/api/v2/incremental/tickets');
		});
	my $before = observe($label);
	my $checkpoint = $before->{tickets}{cursor};
	my $old_run = $before->{tickets}{run_id};
	ok(ZendeskMock::decode_cursor($checkpoint), "$label: a cursor checkpoint is stored")
	  or diag("cursor: $checkpoint");
	my ($pid, $query) = worker();
	like($query, qr/^zendesk_sync zendesk: tickets fetching, page 3\b/,
		"$label: the worker reports that it fetches after page 3");
	kill9_and_wait_restart($pid, $label);

	my $after = observe("$label after restart");
	is($after->{tickets}{status}, 'running',
		"$label: after the crash the tickets state still says running");
	is($after->{tickets}{cursor}, $checkpoint,
		"$label: the crash kept the checkpoint of the last committed page");
	is(sql('SELECT count(*) FROM zendesk.tickets'), $after->{tickets}{records},
		"$label: the local rows are the committed pages' records");
	check_tickets_match_cursor($label, $checkpoint);

	my $m = mutate_between($label);
	rerun_and_check($label, interrupted => 'tickets', old_run => $old_run,
		cursor => $checkpoint);
	check_mutations_arrived($label, $m);
}

# ------------------------------------------------ b. kill -9 during writes

{
	my $label = 'kill -9 in writes';
	# start tickets over into an empty table, with a trigger slowing every
	# row and counting rows written (nextval is not transactional)
	sql(q{
		TRUNCATE zendesk.tickets;
		SELECT zendesk_sync_reset('zendesk', 'tickets');
		CREATE SEQUENCE zd_rows_seen;
		CREATE FUNCTION zd_slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  PERFORM nextval('public.zd_rows_seen');
		  PERFORM pg_sleep(0.1);
		  RETURN NEW;
		END $$;
		CREATE TRIGGER zd_slow_row BEFORE INSERT ON zendesk.tickets
		  FOR EACH ROW EXECUTE FUNCTION zd_slow_row();
	});
	forget_positions('tickets');
	$mock->clear_requests;
	is( sql(q{SELECT string_agg(status, ',') FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)}),
		'started', "$label: zendesk_sync(wait => false) started");
	my $rows_seen = sub {
		sql(q{SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM zd_rows_seen});
	};
	wait_until("$label: worker writing page 2 with some of its rows inserted",
		sub {
			my $st = sync_state();
			my (undef, $q) = worker();
			return $st->{tickets}{pages} == 1
			  && defined $q && $q =~ /tickets writing, page 1\b/
			  && $rows_seen->() >= 20 + 3;
		});
	my $before = observe($label);
	my $checkpoint = $before->{tickets}{cursor};
	my $old_run = $before->{tickets}{run_id};
	my ($pid) = worker();
	kill9_and_wait_restart($pid, $label);
	my $seen = $rows_seen->();

	my $after = observe("$label after restart");
	is($after->{tickets}{cursor}, $checkpoint, "$label: the checkpoint is the one of page 1");
	is($after->{tickets}{pages}, 1, "$label: one page is committed");
	my $local = sql('SELECT count(*) FROM zendesk.tickets');
	is($local, $after->{tickets}{records},
		"$label: the local rows are exactly the committed page's records");
	cmp_ok($local, '<', $seen - 1,
		"$label: the rows of the page in flight ($seen rows were written) were rolled back");

	check_tickets_match_cursor($label, $checkpoint);

	sql(q{DROP TRIGGER zd_slow_row ON zendesk.tickets});
	my $m = mutate_between($label);
	rerun_and_check($label, interrupted => 'tickets', old_run => $old_run,
		cursor => $checkpoint);
	check_mutations_arrived($label, $m);
}

# ------------------------------------------ c. immediate shutdown mid-sync

{
	my $label = 'immediate stop';
	sql(q{
		TRUNCATE zendesk.ticket_events, zendesk.users;
		SELECT zendesk_sync_reset('zendesk', 'ticket_events');
		SELECT zendesk_sync_reset('zendesk', 'users');
	});
	forget_positions('ticket_events', 'users');
	$mock->clear_requests;
	$mock->add_fault(
		{ kind => 'slow', path => '/incremental/ticket_events', after => 4, delay => 20 });
	is( sql(q{SELECT string_agg(status, ',') FROM zendesk_sync('zendesk', wait => false)}),
		'started,started,started,started', "$label: zendesk_sync(wait => false) started");
	wait_until("$label: worker inside the slow 5th ticket_events request after 4 pages",
		sub {
			my $st = sync_state();
			return $st->{ticket_events} && $st->{ticket_events}{status} eq 'running'
			  && $st->{ticket_events}{pages} == 4
			  && $mock->slow_request_in_flight('/api/v2/incremental/ticket_events');
		});
	my $before = observe($label);
	my $checkpoint = $before->{ticket_events}{start_time};
	my $old_run = $before->{ticket_events}{run_id};
	ok($checkpoint =~ /^\d+$/ && $checkpoint > 0, "$label: a start_time checkpoint is stored");
	is($before->{tickets}{status}, 'ok', "$label: tickets finished before the stop");

	$node->stop('immediate');
	$node->start;

	my $after = observe("$label after restart");
	is($after->{ticket_events}{status}, 'running',
		"$label: after the restart the ticket_events state still says running");
	is($after->{ticket_events}{start_time}, $checkpoint,
		"$label: the stop kept the start_time of the last committed page");
	is(sql('SELECT count(*) FROM zendesk.ticket_events'), $after->{ticket_events}{records},
		"$label: the local ticket_events are the committed pages' records");
	check_rows_match_checkpoint($label, 'ticket_events', 'timestamp',
		sub { $_[0] < $checkpoint });
	is(sql('SELECT count(*) FROM zendesk.users'), '0', "$label: users had not started");

	my $m = mutate_between($label);
	rerun_and_check($label, interrupted => 'ticket_events', old_run => $old_run,
		start_time => $checkpoint);
	check_mutations_arrived($label, $m);
}

cmp_ok($observations, '>=', 20, "the checkpoints were observed $observations times");
is_deeply(\@backwards, [], 'no checkpoint ever moved backwards')
  or diag(join("\n", @backwards));

$node->stop;
$mock->stop;
done_testing();
