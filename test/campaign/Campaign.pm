# test/campaign/Campaign.pm: the seeded fault campaign of zendesk_sync().
#
# One schedule, generated from a seed alone (Campaign::schedule($seed)):
#
#   * a fresh mock account (the mock's seed, a few hundred tickets, their
#     events, users and organizations) and a new foreign server with a small
#     page_size, request_timeout 2 s, and its own target schema;
#   * sometimes 1000+ organizations sharing one second, made before the
#     first sync (an old second) or while a sync runs (the current second);
#   * HTTP faults, armed in the mock's fault schedule at requests chosen by
#     the seed ("let N matching requests through, then fail M"): 429 with
#     and without a usable Retry-After, 500/502/503 with and without
#     Retry-After, 504 on large pages, resets before and inside the body,
#     truncated JSON, HTML pages with 200 and 5xx, a response slower than
#     request_timeout, a rejected cursor;
#   * 1 to 3 rounds, each a zendesk_sync(wait => false) with actions at
#     points chosen by the seed (stream, pages committed): SIGKILL of the
#     worker inside an HTTP request, during its upserts, just after a commit
#     or while it fetches; an immediate shutdown and restart of the
#     cluster; records created, updated and deleted while the sync runs.
#
# Then the faults are cleared and zendesk_sync() runs (wait => true) until
# every stream ends ok, and the checks run for every stream:
#
#   * the local rows equal the mock's account record for record and field
#     for field (jsonb equality of `data` with GET /__mock/account/<res>):
#     none missing, none extra, no duplicate id, none older than the
#     account's version;
#   * after every round and at the end: the checkpoint is never ahead of
#     the committed data (every account record at or before the cursor
#     position, or before start_time, is local and equal, read in the same
#     snapshot as the state row), and across all observations of
#     zendesk_sync_state no checkpoint moves backwards (cursors decoded as
#     (ts, id)), except right after a cursor the mock rejected;
#   * no zendesk_sync_state / zendesk_sync_runs row is left 'running';
#   * the server log has no "terminated by signal" but the harness's own
#     kills, and no PANIC or failed assertion;
#   * each 504 made the next request of that export ask for half the
#     records.
#
# The schedule JSON and `test/campaign/run.sh --seed N` are printed when a
# schedule fails: the seed regenerates the same schedule (the timing of
# the kills is the only thing that varies).
package Campaign;

use strict;
use warnings;

use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Test::More;
use Time::HiRes ();
use PostgreSQL::Test::Utils;
use ZendeskMock;

our @STREAMS = qw(tickets ticket_events users organizations);
our %CURSOR_STREAM = (tickets => 1, users => 1);
our %EXPORT_PATH = (
	tickets       => '/api/v2/incremental/tickets/cursor',
	ticket_events => '/api/v2/incremental/ticket_events',
	users         => '/api/v2/incremental/users/cursor',
	organizations => '/api/v2/incremental/organizations');

# how a record's version and export position are read from its JSON
our %VERSION_SQL = (
	tickets       => q{(%s->>'generated_timestamp')::bigint},
	ticket_events => q{(%s->>'timestamp')::bigint},
	users         => q{extract(epoch FROM (%s->>'updated_at')::timestamptz)::bigint},
	organizations => q{extract(epoch FROM (%s->>'updated_at')::timestamptz)::bigint});

our @FAULT_KINDS = qw(
  429 429_no_retry_after 429_bad_retry_after
  500 500_retry_after 502 502_retry_after 503 503_retry_after
  504 reset reset_mid_body truncated html_200 html_5xx timeout bad_cursor);

our @ACTION_KINDS = qw(kill_request kill_writing kill_commit kill_fetching
  immediate mutate bulk_same_second);

my $JSON = JSON::PP->new->utf8->canonical;

# ------------------------------------------------------------------ PRNG
# xorshift32: the same sequence on every platform and Perl build.
{

	package Campaign::Rng;

	sub new
	{
		my ($class, $seed) = @_;
		my $s = (($seed * 2654435761) + 0x9E3779B9) & 0xFFFFFFFF;
		$s = 0x12345678 if $s == 0;
		my $self = bless { s => $s }, $class;
		$self->next32 for 1 .. 8;
		return $self;
	}

	sub next32
	{
		my ($self) = @_;
		my $x = $self->{s};
		$x ^= ($x << 13) & 0xFFFFFFFF;
		$x ^= $x >> 17;
		$x ^= ($x << 5) & 0xFFFFFFFF;
		$self->{s} = $x & 0xFFFFFFFF;
		return $self->{s};
	}

	# integer in [lo, hi]
	sub int
	{
		my ($self, $lo, $hi) = @_;
		return $lo if $hi <= $lo;
		return $lo + $self->next32 % ($hi - $lo + 1);
	}
	sub pick   { my ($self, @a) = @_; return $a[ $self->next32 % @a ]; }
	sub chance { my ($self, $p) = @_; return ($self->next32 / 4294967296.0) < $p; }
}

# ------------------------------------------------------------ generation

sub _est_pages
{
	my ($sch, $stream) = @_;
	my $a = $sch->{account};
	my $n =
	    $stream eq 'tickets'       ? $a->{tickets}
	  : $stream eq 'ticket_events' ? $a->{tickets} * $a->{events_per_ticket}
	  : $stream eq 'users'         ? $a->{users}
	  :                              $a->{organizations};
	return POSIX::ceil($n / $sch->{page_size}) + 1;
}

sub _fault_spec
{
	my ($rng, $kind, $sch) = @_;
	my %s;
	if    ($kind eq '429')                 { %s = (kind => '429', retry_after => 1); }
	elsif ($kind eq '429_no_retry_after')  { %s = (kind => '429', retry_after => undef); }
	elsif ($kind eq '429_bad_retry_after') { %s = (kind => '429', retry_after => 'soon'); }
	elsif ($kind =~ /^(50[023])(_retry_after)?$/)
	{
		%s = (kind => $1);
		$s{retry_after} = 1 if $2;
	}
	elsif ($kind eq '504')
	{
		# a gateway timeout on pages of the configured size or larger
		%s = (kind => '504', min_per_page => $sch->{page_size});
	}
	elsif ($kind eq 'reset')          { %s = (kind => 'reset'); }
	elsif ($kind eq 'reset_mid_body') { %s = (kind => 'reset_mid_body'); }
	elsif ($kind eq 'truncated')      { %s = (kind => 'truncated'); }
	elsif ($kind eq 'html_200')       { %s = (kind => 'html_200'); }
	elsif ($kind eq 'html_5xx')
	{
		%s = (
			kind         => 'status',
			status       => $rng->pick(500, 502),
			content_type => 'text/html; charset=utf-8',
			body => '<!DOCTYPE html><html><head><title>Error</title></head>'
			  . '<body><h1>Something went wrong</h1></body></html>');
	}
	elsif ($kind eq 'timeout')
	{
		# slower than the server's request_timeout (2 s)
		%s = (kind => 'slow', delay => 3);
	}
	elsif ($kind eq 'bad_cursor') { %s = (kind => 'bad_cursor'); }
	else                          { die "unknown fault kind $kind"; }
	$s{label} = $kind;
	return \%s;
}

# The schedule of a seed; a pure function of the seed.
sub schedule
{
	my ($seed) = @_;
	my $rng = Campaign::Rng->new($seed);
	my %sch = (seed => $seed);
	$sch{account} = {
		seed              => $rng->int(1, 1_000_000),
		tickets           => $rng->int(100, 300),
		users             => $rng->int(20, 60),
		organizations     => $rng->int(10, 40),
		events_per_ticket => $rng->int(1, 2),
	};
	$sch{page_size} = $rng->pick(10, 20, 25, 40, 50);

	# 1000+ records sharing one second in the organizations export
	$sch{setup_bulk} =
	  $rng->chance(0.15)
	  ? { resource => 'organizations', count => $rng->int(1000, 1100),
		  at => 1_720_000_000 + $rng->int(0, 5_000_000) }
	  : undef;

	# HTTP faults
	my @faults;
	my $nfaults = $rng->int(2, 7);
	for (1 .. $nfaults)
	{
		my $kind = $rng->pick(@FAULT_KINDS);
		my $stream =
		    $kind eq 'bad_cursor' ? $rng->pick('tickets', 'users')
		  : $rng->chance(0.15)    ? undef                             # any request
		  :                         $rng->pick(@STREAMS);
		my $f = _fault_spec($rng, $kind, \%sch);
		if (defined $stream)
		{
			$f->{path} = $EXPORT_PATH{$stream};
			$f->{after} = $rng->int(0, _est_pages(\%sch, $stream));
		}
		else
		{
			$f->{after} = $rng->int(0, 30);
		}
		$f->{query} = { cursor => '*' } if $kind eq 'bad_cursor';
		$f->{times} =
		  $kind eq 'bad_cursor' || $kind eq 'timeout' ? 1 : $rng->pick(1, 1, 1, 2, 3);
		push @faults, $f;
	}
	$sch{faults} = \@faults;

	# rounds of zendesk_sync(wait => false) with actions
	my @rounds;
	my $nrounds = $rng->int(1, 3);
	for my $r (1 .. $nrounds)
	{
		my @actions;
		my $nact = $rng->int(0, 2);
		for (1 .. $nact)
		{
			my $kind = $rng->pick(@ACTION_KINDS, qw(kill_request kill_writing kill_commit mutate immediate));
			my $stream = $rng->pick(@STREAMS);
			# later rounds resume where the last one stopped: few pages left
			my %a = (
				kind   => $kind,
				stream => $stream,
				pages  => $r == 1 ? $rng->int(0, _est_pages(\%sch, $stream) - 2) : $rng->int(0, 2));
			$a{count} = $rng->int(1, 8) if $kind eq 'mutate';
			if ($kind eq 'bulk_same_second')
			{
				$a{resource} = $rng->chance(0.25) ? 'tickets' : 'organizations';
				$a{count} = $rng->int(1000, 1050);
			}
			push @actions, \%a;
		}
		# a kill or a shutdown ends its round: keep at most one, last
		my @terminal = grep { $_->{kind} =~ /^(kill_|immediate)/ } @actions;
		my @others   = grep { $_->{kind} !~ /^(kill_|immediate)/ } @actions;
		@actions = (@others, @terminal ? ($terminal[0]) : ());
		push @rounds,
		  {
			# zendesk_sync_reset of streams before the round: a full re-export
			reset => ($r > 1 && $rng->chance(0.3)) ? [ $rng->pick(@STREAMS) ] : [],
			actions => \@actions,
			mutate_after => $rng->chance(0.4) ? $rng->int(1, 6) : 0,
		  };
	}
	$sch{rounds} = \@rounds;
	# a seed-chosen pick of the mock's records to mutate
	$sch{mutation_seed} = $rng->int(1, 1_000_000);
	return \%sch;
}

sub schedule_json { return $JSON->encode($_[0]); }

# --------------------------------------------------------------- harness

# Campaign->new(node => $node, mock => $mock [, db => 'postgres',
#   verbose => 0]); the node must be started with the settings of
#   cluster_conf().
sub new
{
	my ($class, %opt) = @_;
	my $self = bless {
		node  => $opt{node},
		mock  => $opt{mock},
		db    => $opt{db} // 'postgres',
		stats => {
			schedules        => 0,
			passed           => 0,
			failed           => 0,
			faults           => {},
			kills            => {},
			immediate        => 0,
			mutations        => 0,
			bulk             => 0,
			records_compared => 0,
			mismatches       => 0,
			not_reached      => 0,
			final_attempts   => 0,
			observations     => 0,
			seconds          => 0,
		},
		todo => $opt{todo} // {},
	}, $class;
	$self->_setup_sql;
	return $self;
}

# postgresql.conf lines the campaign cluster needs
sub cluster_conf
{
	return <<'EOC';
zendesk_fdw.holdback = 2
zendesk_fdw.max_retry_wait = 1
restart_after_crash = on
max_worker_processes = 16
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOC
}

sub sql
{
	my ($self, $sql) = @_;
	return $self->{node}->safe_psql($self->{db}, $sql);
}

sub _setup_sql
{
	my ($self) = @_;
	$self->sql(q{
CREATE EXTENSION IF NOT EXISTS zendesk_fdw;
CREATE EXTENSION IF NOT EXISTS plpgsql;
CREATE TABLE IF NOT EXISTS campaign_ctl (row_delay float8 NOT NULL);
INSERT INTO campaign_ctl SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM campaign_ctl);

-- A row trigger on every synced table (added by the event trigger below
-- when the worker creates the table): it sleeps row_delay seconds per row,
-- so that "the worker is writing" lasts long enough to be caught.
CREATE OR REPLACE FUNCTION campaign_slow_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE d float8;
BEGIN
  SELECT row_delay INTO d FROM public.campaign_ctl;
  IF d > 0 THEN PERFORM pg_sleep(d); END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION campaign_on_create() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
           WHERE command_tag = 'CREATE TABLE' AND schema_name LIKE 'cs\_%'
  LOOP
    EXECUTE format('CREATE TRIGGER campaign_slow_row BEFORE INSERT OR UPDATE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION public.campaign_slow_row()', r.object_identity);
  END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS campaign_on_create;
CREATE EVENT TRIGGER campaign_on_create ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION campaign_on_create();

-- Wait (polling every 2 ms) until the sync worker is in phase p_phase
-- ('fetching', 'writing', or 'committed': zendesk_sync_state.pages) of
-- stream p_stream with at least p_pages pages committed.  Returns
-- 'pid|query', 'passed' (that stream is over for this run), 'gone' (no
-- worker for 0.5 s) or 'timeout'.
CREATE OR REPLACE FUNCTION campaign_wait_phase(p_server text, p_run bigint, p_stream text,
  p_phase text, p_pages int, p_timeout float8) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => p_timeout);
  absent_since timestamptz;
  r record;
  n int;
  st text;
  streams text[] := ARRAY['tickets', 'ticket_events', 'users', 'organizations'];
  cur text;
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT pid, query INTO r FROM pg_stat_activity
      WHERE backend_type = 'zendesk_fdw sync' LIMIT 1;
    IF NOT FOUND THEN
      absent_since := coalesce(absent_since, clock_timestamp());
      IF clock_timestamp() - absent_since > interval '0.5 s' THEN RETURN 'gone'; END IF;
    ELSE
      absent_since := NULL;
      SELECT status INTO st FROM zendesk_sync_runs WHERE run_id = p_run AND stream = p_stream;
      IF st IS NOT NULL AND st <> 'running' THEN RETURN 'passed'; END IF;
      cur := substring(r.query from '^zendesk_sync [^:]*: (\S+) ');
      IF cur IS NOT NULL AND array_position(streams, cur) > array_position(streams, p_stream) THEN
        RETURN 'passed';
      END IF;
      IF p_phase = 'committed' THEN
        SELECT pages INTO n FROM zendesk_sync_state
          WHERE server = p_server AND stream = p_stream AND run_id = p_run AND status = 'running';
        IF n >= p_pages THEN RETURN r.pid || '|' || r.query; END IF;
      ELSIF r.query LIKE 'zendesk_sync ' || p_server || ': ' || p_stream || ' ' || p_phase || ', page %' THEN
        n := substring(r.query from ', page (\d+)')::int;
        IF n >= p_pages THEN RETURN r.pid || '|' || r.query; END IF;
      END IF;
    END IF;
    IF clock_timestamp() > deadline THEN RETURN 'timeout'; END IF;
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$;
});
	return;
}

# ------------------------------------------------------------ observation

# zendesk_sync_state of a server: { stream => { status cursor start_time
# pages run_id } }; also checks that no checkpoint moved backwards.
sub observe
{
	my ($self, $ctx, $label) = @_;
	my $out = $self->sql(qq{
		SELECT stream, status, coalesce(cursor, ''),
		       coalesce(extract(epoch FROM start_time)::bigint::text, ''),
		       pages, coalesce(run_id::text, '')
		FROM zendesk_sync_state WHERE server = '$ctx->{server}'});
	my %st;
	for my $line (split /\n/, $out)
	{
		my ($stream, @v) = split /\|/, $line, -1;
		my %r;
		@r{qw(status cursor start_time pages run_id)} = @v;
		$st{$stream} = \%r;
		my $pos;
		if ($CURSOR_STREAM{$stream})
		{
			my @p = ZendeskMock::decode_cursor($r{cursor});
			if ($r{cursor} ne '' && !@p)
			{
				push @{ $ctx->{problems} }, "$label: $stream cursor '$r{cursor}' does not decode as <ts>.0||<id>|";
			}
			$pos = \@p if @p;
		}
		elsif ($r{start_time} ne '')
		{
			$pos = [ $r{start_time} + 0, 0 ];
		}
		next unless $pos;
		$self->{stats}{observations}++;
		my $prev = $ctx->{last_pos}{$stream};
		if ($prev
			&& ($pos->[0] < $prev->[0]
				|| ($pos->[0] == $prev->[0] && $pos->[1] < $prev->[1])))
		{
			# a rejected cursor restarts from high_water - recovery_overlap
			my $rejected = $self->_bad_cursor_applied($stream);
			if ($rejected > ($ctx->{excused}{$stream} // 0))
			{
				$ctx->{excused}{$stream} = $rejected;
			}
			else
			{
				push @{ $ctx->{problems} },
				  "$label: $stream checkpoint moved backwards from ($prev->[0], $prev->[1]) to ($pos->[0], $pos->[1])";
			}
		}
		$ctx->{last_pos}{$stream} = $pos;
	}
	return \%st;
}

sub _bad_cursor_applied
{
	my ($self, $stream) = @_;
	my $n = 0;
	for my $f (@{ $self->{mock}->faults })
	{
		$n += $f->{applied}
		  if $f->{kind} eq 'bad_cursor'
		  && (!defined $f->{path} || index($EXPORT_PATH{$stream}, $f->{path}) == 0
			|| $f->{path} eq '/api/v2');
	}
	return $n;
}

# Compare a stream's table with the account, and its checkpoint with the
# committed rows (one snapshot).  Returns a hashref of counts.
sub compare_stream
{
	my ($self, $ctx, $stream) = @_;
	my $json = $self->{mock}->api_raw('GET', "/__mock/account/$stream");
	die "account JSON contains the quote tag\n" if $json =~ /\$zd_acc\$/;
	my $ver_a = sprintf($VERSION_SQL{$stream}, 'r');
	my $ver_l = sprintf($VERSION_SQL{$stream}, 'data');
	my $schema = $ctx->{schema};
	my $covered =
	  $CURSOR_STREAM{$stream}
	  ? q{(SELECT c_ts IS NOT NULL AND (a.ver, a.id) <= (c_ts, c_id) FROM st)}
	  : q{(SELECT s_time IS NOT NULL AND a.ver < s_time FROM st)};
	my $exists = $self->sql(qq{SELECT to_regclass('"$schema"."$stream"') IS NOT NULL});
	my $local = $exists eq 't'
	  ? qq{SELECT id, data, $ver_l AS ver FROM "$schema"."$stream"}
	  : q{SELECT NULL::bigint AS id, NULL::jsonb AS data, NULL::bigint AS ver WHERE false};
	my $out = $self->sql(qq{
		SET log_statement = 'none';
		WITH a AS MATERIALIZED (
		  SELECT (r->>'id')::bigint AS id, r AS rec, $ver_a AS ver
		  FROM jsonb_array_elements(\$zd_acc\$$json\$zd_acc\$::jsonb) r),
		l AS MATERIALIZED ($local),
		st AS MATERIALIZED (
		  SELECT split_part(convert_from(decode(cursor, 'base64'), 'UTF8'), '.', 1)::bigint AS c_ts,
		         split_part(convert_from(decode(cursor, 'base64'), 'UTF8'), '|', 3)::bigint AS c_id,
		         extract(epoch FROM start_time)::bigint AS s_time
		  FROM zendesk_sync_state WHERE server = '$ctx->{server}' AND stream = '$stream'),
		cov AS MATERIALIZED (SELECT a.* FROM a WHERE $covered)
		SELECT (SELECT count(*) FROM l),
		       (SELECT count(*) FROM a),
		       (SELECT count(DISTINCT id) FROM l),
		       (SELECT count(*) FROM a WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a.id)),
		       (SELECT count(*) FROM l WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.id = l.id)),
		       (SELECT count(*) FROM a JOIN l USING (id) WHERE l.data IS DISTINCT FROM a.rec),
		       (SELECT count(*) FROM a JOIN l USING (id) WHERE l.ver < a.ver),
		       (SELECT count(*) FROM cov),
		       (SELECT count(*) FROM cov WHERE NOT EXISTS
		          (SELECT 1 FROM l WHERE l.id = cov.id AND l.data = cov.rec)),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM a WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a.id) ORDER BY id LIMIT 10) x),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM a JOIN l USING (id) WHERE l.data IS DISTINCT FROM a.rec ORDER BY id LIMIT 10) x),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM cov WHERE NOT EXISTS
		            (SELECT 1 FROM l WHERE l.id = cov.id AND l.data = cov.rec) ORDER BY id LIMIT 10) x)
	});
	my %r;
	@r{qw(local_rows account_rows distinct_ids missing extra different older
		  covered ahead missing_ids different_ids ahead_ids)} = split /\|/, $out, -1;
	return \%r;
}

# the checkpoint-vs-data check of every stream (after a round)
sub check_checkpoints
{
	my ($self, $ctx, $label) = @_;
	for my $stream (@STREAMS)
	{
		my $r = $self->compare_stream($ctx, $stream);
		$ctx->{covered_checks} += $r->{covered};
		if ($r->{ahead} > 0)
		{
			push @{ $ctx->{problems} },
			  "$label: $stream checkpoint is ahead of the committed rows: $r->{ahead} of the "
			  . "$r->{covered} account records it covers are missing or different locally (ids $r->{ahead_ids})";
		}
	}
	return;
}

# --------------------------------------------------------------- actions

sub _mock_now { return Time::HiRes::time(); }

# what happened, with the time since the schedule started
sub _log
{
	my ($ctx, $what) = @_;
	push @{ $ctx->{log} }, sprintf('+%.1fs %s', Time::HiRes::time() - $ctx->{t0}, $what);
	return;
}

# one random mutation; returns a short description
sub _mutate_one
{
	my ($self, $ctx) = @_;
	my $rng = $ctx->{mrng};
	my $res = $rng->pick(qw(tickets tickets tickets users organizations));
	my $op = $rng->pick(qw(update update update create delete));
	my $ids = $ctx->{ids}{$res};
	my %spec = (op => $op);
	my $n = ++$ctx->{mutation_no};
	if ($op ne 'create')
	{
		$spec{id} = $ids->[ $rng->int(0, $#$ids) ];
	}
	if ($op eq 'update')
	{
		$spec{changes} =
		    $res eq 'tickets'
		  ? { subject => "campaign $ctx->{seed} change $n",
			  status => $rng->pick(qw(open pending solved)),
			  priority => $rng->pick(qw(low normal high urgent)) }
		  : $res eq 'users' ? { name => "Campaign User $n", notes => "changed $n" }
		  :                   { name => "Campaign Org $ctx->{seed}-$n", notes => "changed $n" };
		$spec{comment} = "campaign comment $n" if $res eq 'tickets' && $rng->chance(0.5);
	}
	elsif ($op eq 'create')
	{
		$spec{changes} =
		    $res eq 'tickets' ? { subject => "campaign $ctx->{seed} new $n" }
		  : $res eq 'users'   ? { name => "Campaign New User $n" }
		  :                     { name => "Campaign New Org $ctx->{seed}-$n" };
	}
	my $ans = $self->{mock}->mutate($res, \%spec);
	push @$ids, $ans->{id} if $op eq 'create' && defined $ans->{id};
	$ctx->{last_mutation} = _mock_now();
	$self->{stats}{mutations}++;
	return "$op $res " . ($ans->{id} // '?');
}

sub _wait_restart
{
	my ($self, $offset, $label) = @_;
	my $node = $self->{node};
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	$node->poll_query_until($self->{db}, 'SELECT true')
	  or die "$label: the server did not come back after the crash\n";
	return;
}

sub _kill_worker
{
	my ($self, $ctx, $pid, $phase, $query) = @_;
	my $node = $self->{node};
	my $offset = -s $node->logfile;
	if (!kill('KILL', $pid))
	{
		_log($ctx, "kill $pid failed: $!");
		return 0;
	}
	$ctx->{killed}{$pid} = 1;
	push @{ $ctx->{boundaries} }, Time::HiRes::time();
	# The worker may have been exiting already (a zombie takes the signal
	# and exits 0): then the postmaster logs nothing and nothing restarts.
	my $landed = ZendeskMock::poll_until(10,
		sub { slurp_file($node->logfile, $offset) =~ /\(PID $pid\) was terminated by signal 9/ }, 0.05);
	if (!$landed)
	{
		_log($ctx, "SIGKILL of worker $pid ($phase) came after it had exited: $query");
		$self->{stats}{kills}{'after exit'}++;
		return 1;
	}
	$self->{stats}{kills}{$phase}++;
	_log($ctx, "SIGKILL worker $pid ($phase) at: $query");
	$self->_wait_restart($offset, "kill $phase");
	$self->sql('UPDATE campaign_ctl SET row_delay = 0');
	return 1;
}

# run one action; returns 1 when the round is over (worker killed, cluster
# restarted)
sub _do_action
{
	my ($self, $ctx, $run, $a) = @_;
	my $kind = $a->{kind};
	my ($phase, $sqlphase) =
	    $kind eq 'kill_request'  ? ('request', 'committed')
	  : $kind eq 'kill_writing'  ? ('writing', 'writing')
	  : $kind eq 'kill_commit'   ? ('after commit', 'committed')
	  : $kind eq 'kill_fetching' ? ('fetching', 'fetching')
	  :                            ($kind, 'committed');
	$self->sql('UPDATE campaign_ctl SET row_delay = 0.004') if $kind eq 'kill_writing';
	my $w = $self->sql(
		"SELECT campaign_wait_phase('$ctx->{server}', $run, '$a->{stream}', '$sqlphase', $a->{pages}, 60)");
	$self->observe($ctx, "before $kind");
	if ($w !~ /^(\d+)\|(.*)$/s)
	{
		$self->sql('UPDATE campaign_ctl SET row_delay = 0') if $kind eq 'kill_writing';
		_log($ctx, "$kind at $a->{stream} page $a->{pages}: not reached ($w)");
		$self->{stats}{not_reached}++;
		if ($w eq 'timeout')
		{
			push @{ $ctx->{problems} }, "$kind: the worker did not reach $a->{stream} page $a->{pages} within 60 s and did not end";
		}
		return $w eq 'gone' ? 1 : 0;
	}
	my ($pid, $query) = ($1, $2);

	if ($kind eq 'mutate')
	{
		my @d = map { $self->_mutate_one($ctx) } 1 .. $a->{count};
		_log($ctx, "while syncing ($query): " . join(", ", @d));
		return 0;
	}
	if ($kind eq 'bulk_same_second')
	{
		my $ans = $self->{mock}->mutate($a->{resource},
			{ op => 'bulk_same_second', count => $a->{count} });
		push @{ $ctx->{ids}{ $a->{resource} } }, @{ $ans->{ids} // [] };
		$ctx->{last_mutation} = _mock_now();
		$self->{stats}{bulk}++;
		_log($ctx, "while syncing ($query): $a->{count} $a->{resource} changed in second $ans->{at}");
		return 0;
	}
	if ($kind eq 'immediate')
	{
		_log($ctx, "immediate shutdown at: $query");
		push @{ $ctx->{boundaries} }, Time::HiRes::time();
		$self->{node}->stop('immediate');
		$self->{node}->start;
		$self->{stats}{immediate}++;
		return 1;
	}
	if ($kind eq 'kill_request')
	{
		# hold the stream's next request in the mock, kill the worker inside it
		$self->{mock}->add_fault(
			{ kind => 'slow', delay => 1.5, path => $EXPORT_PATH{ $a->{stream} },
			  label => 'kill_request' });
		my $inflight = ZendeskMock::poll_until(10,
			sub { $self->{mock}->slow_request_in_flight($EXPORT_PATH{ $a->{stream} }) }, 0.02);
		if (!$inflight)
		{
			_log($ctx, "kill_request at $a->{stream} page $a->{pages}: no request held");
			$self->{stats}{not_reached}++;
			return 0;
		}
		my $out = $self->sql(q{SELECT pid || '|' || query FROM pg_stat_activity
		                      WHERE backend_type = 'zendesk_fdw sync'});
		return 0 unless $out =~ /^(\d+)\|(.*)$/s;
		($pid, $query) = ($1, $2);
	}
	$self->_kill_worker($ctx, $pid, $phase, $query);
	return 1;
}

# wait until the worker of the run is gone; observe the state meanwhile
sub _wait_round_end
{
	my ($self, $ctx, $label) = @_;
	my $absent = 0;
	my $ok = ZendeskMock::poll_until(
		120,
		sub {
			$self->observe($ctx, $label);
			my $n = $self->sql(
				q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync'});
			$absent = $n eq '0' ? $absent + 1 : 0;
			return $absent >= 2;
		},
		0.1);
	push @{ $ctx->{problems} }, "$label: the sync worker did not end within 120 s" unless $ok;
	return;
}

# ------------------------------------------------------------- schedules

# Run one schedule: a Test::More subtest named after the seed.  Returns
# true when every check passed.
sub run_schedule
{
	my ($self, $seed) = @_;
	my $sch = schedule($seed);
	my $t0 = Time::HiRes::time();
	my $ok;
	my $ctx;
	my $err;
	{
		local $@;
		$self->{current} = undef;
		$ctx = eval { $self->_execute($sch) };
		$err = $@;
		# what happened up to the error
		$ctx //= $self->{current};
	}
	$self->_recover if $err;
	$self->{stats}{schedules}++;
	my $name = "schedule seed $seed";
	$ok = subtest $name => sub {
		if ($err)
		{
			fail("schedule ran without a harness error");
			diag("error: $err");
			return;
		}
		$self->_checks($sch, $ctx);
	};
	my $dt = Time::HiRes::time() - $t0;
	$self->{stats}{seconds} += $dt;
	if ($ok) { $self->{stats}{passed}++; }
	else
	{
		$self->{stats}{failed}++;
		push @{ $self->{stats}{failed_seeds} }, $seed;
		diag("schedule of seed $seed: " . schedule_json($sch));
		diag("what happened: " . join("\n  ", @{ $ctx->{log} // [] }));
		diag("reproduce with: test/campaign/run.sh --seed $seed");
	}
	note(sprintf("seed %d: %.1f s", $seed, $dt));
	return $ok;
}

# after a harness error: make sure the next schedule finds a running server
sub _recover
{
	my ($self) = @_;
	my $node = $self->{node};
	my ($rc) = $node->psql($self->{db}, 'SELECT 1');
	return if defined $rc && $rc == 0;
	$node->_update_pid(-1);
	$node->start(fail_ok => 1) unless defined $node->{_pid};
	$node->poll_query_until($self->{db}, 'SELECT true');
	eval { $self->{mock}->clear_faults };
	return;
}

sub _execute
{
	my ($self, $sch) = @_;
	my $mock = $self->{mock};
	my $node = $self->{node};
	my $seed = $sch->{seed};
	my $server = "cs_$seed";
	my %ctx = (
		seed     => $seed,
		server   => $server,
		schema   => $server,
		problems => [],
		log      => [],
		killed   => {},
		mrng     => Campaign::Rng->new($sch->{mutation_seed}),
		mutation_no => 0,
		last_mutation => 0,
		covered_checks => 0,
		t0       => Time::HiRes::time(),
	);
	my $ctx = \%ctx;
	$self->{current} = $ctx;
	$ctx->{log_offset} = -s $node->logfile;

	# a fresh account and server
	$mock->api('POST', '/__mock/reset', $sch->{account});
	$self->sql(qq{
		DROP SCHEMA IF EXISTS "$server" CASCADE;
		DROP SERVER IF EXISTS "$server" CASCADE;
		DELETE FROM zendesk_sync_state WHERE server = '$server';
		DELETE FROM zendesk_sync_runs WHERE server = '$server';
		UPDATE campaign_ctl SET row_delay = 0;
	});
	$mock->setup_server($node, $self->{db}, server => $server,
		options => { page_size => $sch->{page_size}, request_timeout => 2,
					 sync_schema => $server });
	if (my $b = $sch->{setup_bulk})
	{
		$mock->mutate($b->{resource},
			{ op => 'bulk_same_second', count => $b->{count}, at => $b->{at} });
		$self->{stats}{bulk}++;
		_log($ctx, "setup: $b->{count} $b->{resource} share second $b->{at}");
	}
	for my $res (qw(tickets users organizations))
	{
		$ctx->{ids}{$res} = [ map { $_->{id} } @{ $mock->account($res) } ];
	}
	$mock->add_fault(@{ $sch->{faults} }) if @{ $sch->{faults} };

	my $round_no = 0;
	for my $round (@{ $sch->{rounds} })
	{
		$round_no++;
		for my $stream (@{ $round->{reset} // [] })
		{
			my ($rc, $out, $errout) = $node->psql($self->{db},
				"SELECT zendesk_sync_reset('$server', '$stream')");
			_log($ctx, "zendesk_sync_reset of $stream: " . ($rc == 0 ? 'done' : "refused: $errout"));
			# the position legitimately goes back to the start
			delete $ctx->{last_pos}{$stream} if $rc == 0;
			$self->{stats}{resets}++ if $rc == 0;
		}
		my $started = $self->sql(
			"SELECT string_agg(status, ',') FROM zendesk_sync('$server', wait => false); "
			  . "SELECT currval('zendesk_sync_run_id_seq')");
		my ($statuses, $run) = split /\n/, $started;
		_log($ctx, "round $round_no: run $run ($statuses)");
		my $over = 0;
		for my $a (@{ $round->{actions} })
		{
			$over = $self->_do_action($ctx, $run, $a);
			last if $over;
		}
		$self->_wait_round_end($ctx, "round $round_no") unless $over;
		$ctx->{interrupted} = 1 if $over;
		push @{ $ctx->{boundaries} }, Time::HiRes::time();
		$self->observe($ctx, "end of round $round_no");
		$self->check_checkpoints($ctx, "end of round $round_no");
		if ($round->{mutate_after})
		{
			my @d = map { $self->_mutate_one($ctx) } 1 .. $round->{mutate_after};
			_log($ctx, "after round $round_no: " . join(", ", @d));
		}
	}

	# what the mock injected
	$ctx->{faults} = $mock->faults;
	$ctx->{requests} = $mock->requests;
	$mock->clear_faults;
	$self->sql('UPDATE campaign_ctl SET row_delay = 0');

	# converge: no faults; mutations must be past both hold-backs first
	my $until = $ctx->{last_mutation} + 3;
	ZendeskMock::poll_until(10, sub { Time::HiRes::time() >= $until }, 0.1);
	my $attempt = 0;
	my $final = '';
	while ($attempt < 3)
	{
		$attempt++;
		$self->{stats}{final_attempts}++;
		$final = $self->sql(
			"SELECT stream || ':' || status || ':' || coalesce(message, '') FROM zendesk_sync('$server')");
		$self->observe($ctx, "final sync $attempt");
		last unless grep { !/^[a-z_]+:ok:/ } split /\n/, $final;
	}
	$ctx->{final} = $final;
	$ctx->{final_attempts} = $attempt;
	_log($ctx, "final sync ($attempt attempt(s)): " . join('; ', split /\n/, $final));
	return $ctx;
}

sub _checks
{
	my ($self, $sch, $ctx) = @_;
	my $stats = $self->{stats};

	# fault counts by kind (applied requests)
	my %applied;
	for my $f (@{ $ctx->{faults} })
	{
		my $k = $f->{label} // $f->{kind};
		next if $k eq 'kill_request';    # the harness's hold for a kill, not a fault
		$applied{$k} += $f->{applied};
		$stats->{faults}{$k} += $f->{applied};
	}
	note('faults injected: '
		  . (join(', ', map { "$_=$applied{$_}" } sort keys %applied) || 'none'));

	my @final = split /\n/, $ctx->{final};
	my @bad = grep { !/^[a-z_]+:ok:/ } @final;
	is(scalar(@final), 4, 'the final sync reports 4 streams');
	is_deeply(\@bad, [], 'the final sync ends ok for every stream')
	  or diag(join("\n", @final));

	for my $stream (@STREAMS)
	{
		my $r = $self->compare_stream($ctx, $stream);
		$stats->{records_compared} += $r->{account_rows};
		my $mism = $r->{missing} + $r->{extra} + $r->{different} + $r->{older}
		  + ($r->{local_rows} - $r->{distinct_ids});
		$stats->{mismatches} += $mism;
		ok( $r->{account_rows} > 0 && $mism == 0
			  && $r->{local_rows} == $r->{account_rows},
			"$stream: $r->{local_rows} local rows equal the account's $r->{account_rows} records")
		  or diag(join(', ', map { "$_=$r->{$_}" } sort keys %$r));
		is($r->{ahead}, 0, "$stream: the final checkpoint covers only committed rows")
		  or diag("ids: $r->{ahead_ids}");
	}

	is($self->sql(qq{SELECT count(*) FROM zendesk_sync_state
	                 WHERE server = '$ctx->{server}' AND status = 'running'}),
		'0', 'no zendesk_sync_state row is left running');
	is($self->sql(qq{SELECT count(*) FROM zendesk_sync_runs
	                 WHERE server = '$ctx->{server}' AND status = 'running'}),
		'0', 'no zendesk_sync_runs row is left running');

	is_deeply($ctx->{problems}, [],
		"checkpoints never ahead of the data nor moving backwards ($ctx->{covered_checks} covered records checked)")
	  or diag(join("\n", @{ $ctx->{problems} }));

	# the server log: crashes other than our own kills
	my $log = slurp_file($self->{node}->logfile, $ctx->{log_offset});
	my @foreign;
	for my $line (split /\n/, $log)
	{
		if (my ($sig) = $line =~ /terminated by signal (\d+)/)
		{
			my ($pid) = $line =~ /\(PID (\d+)\)/;
			push @foreign, $line
			  unless $sig == 9 && defined $pid && $ctx->{killed}{$pid};
		}
		push @foreign, $line if $line =~ /PANIC:|TRAP:|server process .* was terminated by exception/;
	}
	is_deeply(\@foreign, [], 'the server log shows no crash but the harness\'s own kills')
	  or diag(join("\n", @foreign));

	# a 504 halves per_page for the same position
	my @reqs = sort { $a->{seq} <=> $b->{seq} } @{ $ctx->{requests} };
	my @not_halved;
	my $n504 = 0;
	for my $i (0 .. $#reqs)
	{
		my $q = $reqs[$i];
		next unless ($q->{status} // 0) == 504 && ($q->{fault} // '') eq '504';
		$n504++;
		my ($next) = grep { $_->{path} eq $q->{path} } @reqs[ $i + 1 .. $#reqs ];
		next unless $next;    # the worker was killed or the run ended
		# a kill, a shutdown or the end of a run in between: the next
		# request is a new worker's, which starts with the full page size
		next if grep { $_ > $q->{time_float} && $_ < $next->{time_float} } @{ $ctx->{boundaries} };
		my $pp = $q->{query}{per_page} // 1000;
		my $want = POSIX::floor($pp / 2) || 1;
		push @not_halved, "$q->{path} per_page=$pp then per_page=" . ($next->{query}{per_page} // 'none')
		  unless ($next->{query}{per_page} // -1) == $want
		  && ($next->{query}{cursor} // '') eq ($q->{query}{cursor} // '')
		  && ($next->{query}{start_time} // '') eq ($q->{query}{start_time} // '');
	}
	is_deeply(\@not_halved, [], "every 504 ($n504) made the next request ask for half the records at the same position")
	  or diag(join("\n", @not_halved));
	return;
}

# "N passed, M failed" and the figures, for the long mode
sub summary
{
	my ($self) = @_;
	my $s = $self->{stats};
	my @lines;
	push @lines, sprintf('schedules: %d run, %d passed, %d failed (%.0f s, %.1f s per schedule)',
		$s->{schedules}, $s->{passed}, $s->{failed}, $s->{seconds},
		$s->{schedules} ? $s->{seconds} / $s->{schedules} : 0);
	my $total = 0;
	$total += $_ for values %{ $s->{faults} };
	push @lines, "faults injected: $total ("
	  . join(', ', map { "$_ $s->{faults}{$_}" } sort keys %{ $s->{faults} }) . ')';
	my $kills = 0;
	$kills += $_ for values %{ $s->{kills} };
	push @lines, "worker SIGKILLs: $kills ("
	  . join(', ', map { "$_ $s->{kills}{$_}" } sort keys %{ $s->{kills} }) . ')';
	push @lines, "immediate shutdowns: $s->{immediate}";
	push @lines, "zendesk_sync_reset (full re-exports) between rounds: " . ($s->{resets} // 0);
	push @lines, "mutations while syncing or between runs: $s->{mutations}; 1000+-in-one-second bursts: $s->{bulk}";
	push @lines, "actions whose point was not reached: $s->{not_reached}";
	push @lines, "final syncs run: $s->{final_attempts}";
	push @lines, "checkpoint observations: $s->{observations}";
	push @lines, "records compared: $s->{records_compared}";
	push @lines, "mismatches: $s->{mismatches}";
	push @lines, "failed seeds: " . join(' ', @{ $s->{failed_seeds} }) if $s->{failed_seeds};
	return @lines;
}

1;
