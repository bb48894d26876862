# What the caller of zendesk_sync() and other sessions see of a sync.
#
#   1. psql prints NOTICEs "zendesk_sync: <stream> started" and
#      "... finished: N pages, M records, ..." for every stream, in stream
#      order, with the counts the function returns
#   2. while a sync runs, pg_stat_activity shows a 'zendesk_fdw sync'
#      backend whose query names the stream and page, and
#      zendesk_sync_state says running with pages growing
#   3. pg_terminate_backend stops a worker within seconds even while it waits
#      out a 429 with Retry-After 60 (max_retry_wait = 120)
#   4. cancelling the caller of zendesk_sync(wait => true) stops its worker
#   5. zendesk_sync(wait => false) answers 'started' at once; a concurrent
#      call answers 'already running'
#   6. the state survives pg_dump / pg_restore: a rerun in the restored
#      database resumes from the restored positions, one request per stream
#   7. the fetch thread (src/fetch_thread.c), which receives and parses the
#      next page while the worker writes, is busy with a slow answer: it
#      exists (the worker has two threads); pg_cancel_backend of the worker
#      fails that stream only (the next stream's first request stops the
#      thread, and that stream ends ok); pg_terminate_backend ends the worker
#      within seconds, not after the answer; nothing crashes
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use Test::More;
use Time::HiRes ();
use ZendeskMock;

my $TIMEOUT = 60;    # bound of every poll, seconds
my @STREAMS = qw(tickets ticket_events users organizations);

my $mock = ZendeskMock->start(
	args => [
		'--tickets', 100, '--users', 30, '--organizations', 30,
		'--events-per-ticket', 2
	]);

my $node = PostgreSQL::Test::Cluster->new('sync_progress');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', "zendesk_fdw.holdback = 2\n");
$node->start;
my $db = 'postgres';
$mock->setup_server($node, $db, options => { page_size => 20 });

sub sql { return $node->safe_psql($_[1] // $db, $_[0]); }

sub worker
{
	my $out = sql(
		q{SELECT pid, wait_event_type || ':' || wait_event, query FROM pg_stat_activity
		  WHERE backend_type = 'zendesk_fdw sync'});
	return split /\|/, $out, 3;
}

sub tickets_state
{
	my $out = sql(q{SELECT status, pages, records, coalesce(run_id, 0)
	                FROM zendesk_sync_state WHERE stream = 'tickets'});
	my %r;
	@r{qw(status pages records run_id)} = split /\|/, $out, -1;
	return \%r;
}

sub wait_until
{
	my ($what, $cond, $timeout) = @_;
	my $ok = ZendeskMock::poll_until($timeout // $TIMEOUT, $cond);
	ok($ok, "reached: $what") or die("timed out waiting for: $what");
	return $ok;
}

# seconds until no zendesk_fdw sync backend is left (undef: timed out)
sub seconds_until_worker_gone
{
	my $t0 = Time::HiRes::time();
	my $gone = ZendeskMock::poll_until($TIMEOUT,
		sub { sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync'}) eq '0' },
		0.05);
	return $gone ? Time::HiRes::time() - $t0 : undef;
}

# ------------------------------------------------------ 1. NOTICEs of psql

{
	my ($stdout, $stderr);
	my $rc = $node->psql($db,
		q{SELECT stream, status, pages, records FROM zendesk_sync('zendesk')},
		stdout => \$stdout, stderr => \$stderr);
	is($rc, 0, 'zendesk_sync(wait => true) in psql succeeds') or diag($stderr);
	my %ret = map { my @f = split /\|/; ($f[0] => { status => $f[1], pages => $f[2], records => $f[3] }) }
	  split /\n/, $stdout;
	is_deeply([ map { $ret{$_}{status} // 'missing' } @STREAMS ], [ ('ok') x 4 ],
		'every stream ends ok');

	my @notices = $stderr =~ /NOTICE:\s+(zendesk_sync: .*)$/mg;
	note("notices:\n" . join("\n", @notices));
	my @expected_order;
	for my $s (@STREAMS)
	{
		my @started = grep { $notices[$_] eq "zendesk_sync: $s started" } 0 .. $#notices;
		my @finished = grep { $notices[$_] =~ /^zendesk_sync: $s finished: / } 0 .. $#notices;
		is(scalar(@started), 1, "one NOTICE 'zendesk_sync: $s started'")
		  or diag("psql stderr: $stderr");
		is(scalar(@finished), 1, "one NOTICE 'zendesk_sync: $s finished: ...'");
		next unless @started == 1 && @finished == 1;
		push @expected_order, $started[0], $finished[0];
		like(
			$notices[ $finished[0] ],
			qr/^zendesk_sync: $s finished: $ret{$s}{pages} pages, $ret{$s}{records} records, changes up to \d{4}-\d\d-\d\d /,
			"the $s finished NOTICE has the pages and records the function returns");
		cmp_ok($ret{$s}{pages}, '>', 1, "$s took several pages");
	}
	is_deeply(\@expected_order, [ sort { $a <=> $b } @expected_order ],
		'the NOTICEs come in stream order, started before finished');
	$mock->is_equal_to_account($node, $db, $_, 'first sync') for @STREAMS;
}

# progress NOTICEs in between, every zendesk_fdw.sync_progress_pages pages:
# the third tickets request takes 3 s, so the caller (which looks every
# second) sees the stream standing at 2 pages
{
	sql(q{SELECT zendesk_sync_reset('zendesk', 'tickets')});
	$mock->add_fault(
		{ kind => 'slow', path => '/incremental/tickets', after => 2, delay => 3 });
	my ($stdout, $stderr);
	my $rc = $node->psql($db,
		q{SET zendesk_fdw.sync_progress_pages = 1;
		  SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['tickets'])},
		stdout => \$stdout, stderr => \$stderr);
	is($stdout, 'tickets|ok', 'a tickets run with a slow third page ends ok')
	  or diag($stderr);
	like($stderr, qr/NOTICE:  zendesk_sync: tickets: 2 pages, 40 records, changes up to \d{4}-/,
		'a progress NOTICE reports the pages and records committed so far');
	my @progress = $stderr =~ /NOTICE:  zendesk_sync: tickets: (\d+) pages/g;
	is_deeply(\@progress, [ sort { $a <=> $b } keys %{ { map { $_ => 1 } @progress } } ],
		"progress NOTICEs go up and never repeat (@progress)");
	$mock->clear_faults;
}

# ------------------------------------------- 2. progress seen by observers

{
	my $label = 'observer';
	sql(q{SELECT zendesk_sync_reset('zendesk', 'tickets')});
	$mock->clear_requests;
	# requests 2 and 3 of the tickets export are slow: the worker is caught
	# after 1 and after 2 committed pages
	$mock->add_fault(
		{ kind => 'slow', path => '/incremental/tickets', after => 1, delay => 3 },
		{ kind => 'slow', path => '/incremental/tickets', after => 2, delay => 3 });
	is(sql(q{SELECT status FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)}),
		'started', "$label: zendesk_sync(wait => false) started");
	for my $page (1, 2)
	{
		my ($st, $query);
		wait_until("$label: the worker waits for the tickets page after page $page",
			sub {
				$st = tickets_state();
				(undef, undef, $query) = worker();
				return $st->{pages} == $page && $mock->slow_request_in_flight('/api/v2/incremental/tickets');
			});
		is($st->{status}, 'running', "$label: zendesk_sync_state says running after page $page");
		is($st->{records}, 20 * $page, "$label: zendesk_sync_state counts the records of $page page(s)");
		like($query, qr/^zendesk_sync zendesk: tickets fetching, page $page, ${\ (20 * $page)} records$/,
			"$label: pg_stat_activity shows the stream and page of the worker")
		  or diag("query: " . ($query // '(no worker)'));
	}
	ok(defined seconds_until_worker_gone(), "$label: the worker ends");
	my $st = tickets_state();
	is($st->{status}, 'ok', "$label: the run ends ok");
	cmp_ok($st->{pages}, '>', 2, "$label: pages kept growing to $st->{pages}");
	$mock->clear_faults;
}

# ------------------------------------ 3. pg_terminate_backend during a 429

{
	my $label = '429 wait';
	$mock->clear_requests;
	$mock->add_fault(
		{ kind => '429', path => '/incremental/tickets', retry_after => 60 });
	my $offset = -s $node->logfile;
	is( sql(q{SET zendesk_fdw.max_retry_wait = 120;
	          SELECT status FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)}),
		'started', "$label: zendesk_sync(wait => false) started");
	wait_until("$label: the server log says the worker waits 60 s before retrying",
		sub { slurp_file($node->logfile, $offset) =~ m{zendesk_fdw: GET \S*incremental/tickets\S* returned 429\b.*retrying in 60 s} });
	my ($pid, $wait_event);
	wait_until("$label: the worker sleeps on its latch",
		sub { ($pid, $wait_event) = worker(); return defined $wait_event && $wait_event eq 'Extension:Extension'; });
	is(sql("SELECT pg_terminate_backend($pid)"), 't', "$label: pg_terminate_backend of the worker");
	my $secs = seconds_until_worker_gone();
	ok(defined $secs && $secs < 5,
		sprintf("$label: the worker stopped within 5 s of pg_terminate_backend (%.2f s)", $secs // -1));
	is(scalar(grep { $_->{path} =~ m{/incremental/tickets} } @{ $mock->requests }), 1,
		"$label: the worker did not ask again after the 429");
	like(slurp_file($node->logfile, $offset),
		qr/\[$pid\] FATAL:  terminating background worker "zendesk_fdw sync[^"]*" due to administrator command/,
		"$label: the server log says the worker was terminated");
	$mock->clear_faults;
}

# ------------------------------------- 4. cancelling the caller stops the worker

{
	my $label = 'caller cancel';
	$mock->clear_requests;
	$mock->add_fault({ kind => 'slow', path => '/incremental/tickets', delay => 30 });
	my $bg = $node->background_psql($db, on_error_stop => 0);
	$bg->query_until(qr/go\n/,
		"\\echo go\nSELECT stream, status FROM zendesk_sync('zendesk', ARRAY['tickets']) /* caller */;\n");
	my ($caller, $worker_pid);
	my $offset = -s $node->logfile;
	wait_until("$label: the worker is inside the slow request, the caller waits",
		sub {
			$caller = sql(q{SELECT pid FROM pg_stat_activity
			               WHERE query LIKE '%/* caller */%' AND pid <> pg_backend_pid()
			                 AND backend_type = 'client backend'});
			($worker_pid) = worker();
			return $caller ne '' && defined $worker_pid
			  && $mock->slow_request_in_flight('/api/v2/incremental/tickets');
		});
	is(sql("SELECT pg_cancel_backend($caller)"), 't', "$label: pg_cancel_backend of the caller");
	my $secs = seconds_until_worker_gone();
	ok(defined $secs && $secs < 5,
		sprintf("$label: the worker stopped within 5 s of the cancel (%.2f s)", $secs // -1));
	like(slurp_file($node->logfile, $offset),
		qr/\[$worker_pid\] FATAL:  terminating background worker "zendesk_fdw sync[^"]*" due to administrator command/,
		"$label: the worker was terminated, not left to finish");
	$bg->query('SELECT 1');
	like($bg->{stderr}, qr/canceling statement due to user request/,
		"$label: the caller's statement was cancelled");
	$bg->quit;
	$mock->clear_faults;
}

# --------------------- 5. wait => false answers at once; 'already running'

{
	my $label = 'wait => false';
	$mock->clear_requests;
	$mock->add_fault({ kind => 'slow', path => '/incremental/tickets', delay => 6 });
	my $t0 = Time::HiRes::time();
	my $out = sql(q{SELECT stream || ':' || status FROM zendesk_sync('zendesk', wait => false)});
	my $secs = Time::HiRes::time() - $t0;
	is($out, join("\n", map { "$_:started" } @STREAMS),
		"$label: every stream is 'started'");
	# the worker's first request takes 6 s: none has been answered yet
	my @answered = grep { defined $_->{status} } @{ $mock->requests };
	is(scalar(@answered), 0, "$label: the call returned before its worker had an answer");
	cmp_ok($secs, '<', 5, sprintf("$label: the call returned at once (%.2f s, the first request takes 6 s)", $secs));

	wait_until("$label: the worker holds the tickets stream",
		sub { tickets_state()->{status} eq 'running' && $mock->slow_request_in_flight('/api/v2/incremental/tickets') });
	is(sql(q{SELECT status FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)}),
		'already running', "$label: a concurrent zendesk_sync(wait => false) says already running");
	is( sql(q{SELECT status || '|' || message FROM zendesk_sync('zendesk', ARRAY['tickets'])}),
		'already running|another zendesk_sync is running this stream; nothing was done',
		"$label: a concurrent zendesk_sync(wait => true) says already running");
	ok(defined seconds_until_worker_gone(), "$label: the first worker ends");
	is( sql(q{SELECT string_agg(status, ',' ORDER BY stream) FROM zendesk_sync_state}),
		'ok,ok,ok,ok', "$label: the first run ends ok for every stream");
	like(sql(q{SELECT status || ': ' || message FROM zendesk_sync_runs WHERE stream = 'tickets' AND status = 'failed'
	           ORDER BY run_id DESC LIMIT 1}),
		qr/^failed: terminated: /,
		"$label: the cancelled run recorded its own termination");
	$mock->clear_faults;
	$mock->is_equal_to_account($node, $db, $_, $label) for @STREAMS;
}

# ------------------------------------------------ 6. pg_dump / pg_restore

{
	my $label = 'pg_dump';
	my $state_sql = q{SELECT server, stream, cursor, start_time, high_water, status, pages,
	                         records, last_started_at, last_success_at, last_error,
	                         target_schema, run_id
	                  FROM zendesk_sync_state ORDER BY server, stream};
	my $state = sql($state_sql);
	my $runs = sql(q{SELECT count(*) || '/' || max(run_id) FROM zendesk_sync_runs});

	my $connstr = $node->connstr($db);
	my ($data_only, $err);
	IPC::Run::run([ 'pg_dump', '--data-only', '-t', 'zendesk_sync_state', '-d', $connstr ],
		'>', \$data_only, '2>', \$err)
	  or die "pg_dump failed: $err";
	my ($copy) = $data_only =~ /^(COPY public\.zendesk_sync_state .*?^\\\.$)/ms;
	ok(defined $copy, "$label: pg_dump --data-only -t zendesk_sync_state has its COPY");
	is(scalar(() = ($copy // '') =~ /^zendesk\t/mg), 4, "$label: ... with the 4 state rows");

	my $dump = "$PostgreSQL::Test::Utils::tmp_check/sync_progress.dump";
	command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $connstr ], "$label: pg_dump -Fc");
	sql('CREATE DATABASE restored');
	command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
		"$label: pg_restore into a new database");
	is(sql($state_sql, 'restored'), $state, "$label: zendesk_sync_state is restored as it was");
	is(sql(q{SELECT count(*) || '/' || max(run_id) FROM zendesk_sync_runs}, 'restored'),
		$runs, "$label: zendesk_sync_runs is restored");
	$mock->is_equal_to_account($node, 'restored', $_, "$label restored") for @STREAMS;

	# a rerun in the restored database resumes where the dump was taken
	my %pos = map { my @f = split /\|/, $_, -1; ($f[0] => { cursor => $f[1], start_time => $f[2] }) }
	  split /\n/, sql(q{SELECT stream, coalesce(cursor, ''),
	                           coalesce(extract(epoch FROM start_time)::bigint::text, '')
	                    FROM zendesk_sync_state}, 'restored');
	my $max_run = sql('SELECT max(run_id) FROM zendesk_sync_runs', 'restored');
	$mock->clear_requests;
	my $out = sql(q{SELECT stream, status, pages FROM zendesk_sync('zendesk')}, 'restored');
	is($out, join("\n", map { "$_|ok|1" } @STREAMS),
		"$label: the rerun in the restored database reads one page per stream");
	my @reqs = grep { $_->{path} =~ m{^/api/v2/incremental/} } @{ $mock->requests };
	is(scalar(@reqs), 4, "$label: the rerun made one request per stream");
	for my $r (@reqs)
	{
		my ($stream) = $r->{path} =~ m{^/api/v2/incremental/(\w+)};
		if ($stream eq 'tickets' || $stream eq 'users')
		{
			is($r->{query}{cursor}, $pos{$stream}{cursor},
				"$label: $stream resumes from the restored cursor");
		}
		else
		{
			is($r->{query}{start_time}, $pos{$stream}{start_time},
				"$label: $stream resumes from the restored start_time");
		}
	}
	cmp_ok(sql('SELECT min(run_id) FROM zendesk_sync_state', 'restored'), '>', $max_run,
		"$label: the restored run id sequence continues after the restored runs");
	$mock->is_equal_to_account($node, 'restored', $_, "$label rerun") for @STREAMS;
}

# ---------------------------------- 7. the fetch thread, busy with a slow page

sub threads_of
{
	my ($pid) = @_;
	opendir(my $dh, "/proc/$pid/task") or return 0;
	my $n = grep { /^\d+$/ } readdir($dh);
	closedir($dh);
	return $n;
}

# Start a sync and return the worker's pid once it has committed tickets
# page 1 and waits on its latch for page 2, which the mock answers only
# after $delay s: the fetch thread is inside that request.
sub caught_waiting_for_page_2
{
	my ($label, $delay) = @_;
	sql(q{SELECT zendesk_sync_reset('zendesk', 'tickets')});
	$mock->clear_requests;
	$mock->add_fault(
		{ kind => 'slow', path => '/api/v2/incremental/tickets', after => 1, delay => $delay });
	is(sql(q{SELECT status FROM zendesk_sync('zendesk', wait => false) LIMIT 1}),
		'started', "$label: zendesk_sync(wait => false) started");
	my ($pid, $wait_event);
	wait_until("$label: tickets page 1 committed, the worker waits for page 2",
		sub {
			($pid, $wait_event) = worker();
			return defined $pid && tickets_state()->{pages} == 1
			  && $mock->slow_request_in_flight('/api/v2/incremental/tickets')
			  && defined $wait_event && $wait_event eq 'Extension:Extension';
		});
	is(threads_of($pid), 2, "$label: the worker runs its fetch thread as well");
	return $pid;
}

{
	my $label = 'fetch thread, cancel';
	my $postmaster_start = sql('SELECT pg_postmaster_start_time()');
	my $offset = -s $node->logfile;
	my $pid = caught_waiting_for_page_2($label, 30);
	is(sql("SELECT pg_cancel_backend($pid)"), 't', "$label: pg_cancel_backend of the worker");
	ok(defined seconds_until_worker_gone(), "$label: the worker ends its run");
	my %st = map { my @f = split /\|/; ($f[0] => [ @f[ 1, 2 ] ]) } split /\n/,
	  sql(q{SELECT stream, status, coalesce(last_error, '') FROM zendesk_sync_state});
	is($st{tickets}[0], 'failed', "$label: the tickets stream failed");
	like($st{tickets}[1], qr/canceling statement due to user request/, "$label: ... cancelled");
	is($st{$_}[0], 'ok', "$label: the $_ stream after it ended ok")
	  for qw(ticket_events users organizations);
	$mock->is_equal_to_account($node, $db, $_, $label) for qw(ticket_events users organizations);
	$mock->clear_faults;

	$label = 'fetch thread, terminate';
	$pid = caught_waiting_for_page_2($label, 60);
	is(sql("SELECT pg_terminate_backend($pid)"), 't', "$label: pg_terminate_backend of the worker");
	my $secs = seconds_until_worker_gone();
	ok(defined $secs && $secs < 5,
		sprintf("$label: the worker stopped within 5 s, not after the 60 s answer (%.2f s)", $secs // -1));
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/\[$pid\] FATAL:  terminating background worker "zendesk_fdw sync[^"]*" due to administrator command/,
		"$label: the server log says the worker was terminated");
	unlike($log, qr/terminated by signal|was terminated by exception/, "$label: no process crashed");
	is(sql('SELECT pg_postmaster_start_time()'), $postmaster_start,
		"$label: the postmaster never restarted");
	$mock->clear_faults;

	is(sql(q{SELECT string_agg(stream || '=' || status, ',' ORDER BY stream) FROM zendesk_sync('zendesk')}),
		'organizations=ok,ticket_events=ok,tickets=ok,users=ok', "$label: a rerun ends ok on every stream");
	$mock->is_equal_to_account($node, $db, $_, "$label rerun") for @STREAMS;
}

$node->stop;
$mock->stop;
done_testing();
