# test/lib/ZendeskMock.pm: a private instance of the mock Zendesk server for
# one TAP test (scripts/test.sh runs prove with -I test/lib).
#
#   use ZendeskMock;
#   my $mock = ZendeskMock->start(args => ['--tickets', 50]);
#   ... $mock->url ...          # e.g. http://127.0.0.1:49321
#   $mock->stop;                # also done when $mock goes out of scope
#   (also $mock->port, $mock->pid, $mock->log_file)
#
# The script is $ENV{ZD_MOCK} (set by scripts/test.sh), else
# test/mock/zendesk_mock.py; the interpreter $ENV{ZD_PYTHON}, else python3.
# Default arguments: --holdback 1 --rate-limit 0, then args.  The port comes
# from PostgreSQL::Test::Cluster::get_free_port; the output goes to
# tmp_check/log/mock_PORT.log.  start() dies if the ready line
# ("zendesk mock listening on http://HOST:PORT") does not come in time.
package ZendeskMock;

use strict;
use warnings;

use POSIX ();
use Time::HiRes ();
use Test::More ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

my $READY_RE = qr{zendesk mock listening on (http://\S+)};

sub start
{
	my ($class, %opt) = @_;
	my $script  = $opt{script} // $ENV{ZD_MOCK} // 'test/mock/zendesk_mock.py';
	my $python  = $ENV{ZD_PYTHON} // 'python3';
	my @args    = ('--holdback', '1', '--rate-limit', '0', @{ $opt{args} // [] });
	my $timeout = $opt{timeout} // 30;
	die "ZendeskMock: mock script $script not found\n" unless -f $script;

	for my $attempt (1 .. 5)
	{
		my $port = PostgreSQL::Test::Cluster::get_free_port();
		my $log  = "$PostgreSQL::Test::Utils::log_path/mock_$port.log";
		my $pid  = fork();
		die "ZendeskMock: fork failed: $!\n" unless defined $pid;
		if ($pid == 0)
		{
			open(STDIN, '<', '/dev/null');
			open(STDOUT, '>>', $log) or POSIX::_exit(127);
			open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
			$ENV{PYTHONUNBUFFERED} = 1;
			exec($python, '-u', $script, '--port', $port, @args)
			  or POSIX::_exit(127);
		}

		my $deadline = Time::HiRes::time() + $timeout;
		my ($url, $exited);
		while (Time::HiRes::time() < $deadline)
		{
			my $text = -f $log ? slurp_file($log) : '';
			if ($text =~ $READY_RE)
			{
				$url = $1;
				last;
			}
			if (waitpid($pid, POSIX::WNOHANG()) == $pid)
			{
				$exited = 1;
				last;
			}
			Time::HiRes::sleep(0.1);
		}
		if (defined $url)
		{
			$url =~ s{/+$}{};
			$url =~ s{//0\.0\.0\.0:}{//127.0.0.1:};
			Test::More::note("ZendeskMock: mock at $url (pid $pid, log $log)");
			return bless { pid => $pid, port => $port, url => $url, log => $log },
			  $class;
		}
		my $text = -f $log ? slurp_file($log) : '';
		if ($exited && $text =~ /address already in use|errno 98/i)
		{
			Test::More::note("ZendeskMock: port $port taken, retrying");
			next;
		}
		unless ($exited)
		{
			kill 'KILL', $pid;
			waitpid($pid, 0);
		}
		die "ZendeskMock: the mock did not print its ready line"
		  . ($exited ? ' (it exited)' : " within ${timeout}s")
		  . "; log $log:\n$text\n";
	}
	die "ZendeskMock: could not start the mock after 5 attempts\n";
}

sub url  { return $_[0]->{url}; }
sub port { return $_[0]->{port}; }
sub pid  { return $_[0]->{pid}; }
sub log_file { return $_[0]->{log}; }

# stop: SIGTERM, then SIGKILL after 10 s.
sub stop
{
	my ($self) = @_;
	my $pid = delete $self->{pid};
	return unless $pid;
	kill 'TERM', $pid;
	my $deadline = Time::HiRes::time() + 10;
	while (Time::HiRes::time() < $deadline)
	{
		return if waitpid($pid, POSIX::WNOHANG()) == $pid;
		Time::HiRes::sleep(0.05);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($?, $!, $@);
	$self->stop;
	return;
}

# ------------------------------------------------------------------------
# Control API and checks (added for the sync TAP tests; the functions above
# are unchanged).  Every control call dies on an HTTP error, so a broken
# control request fails the test instead of passing silently.
#
#   $mock->api($method, $path [, $body])  decoded JSON answer
#   $mock->requests / clear_requests      the request log
#   $mock->add_fault(\%spec, ...)         append faults; faults / clear_faults
#   $mock->mutate($resource, \%spec)      POST /__mock/mutate/<resource>
#   $mock->account($resource)             arrayref of records, sorted by id
#   $mock->setup_server($node, $db, %opt) extension, server, user mapping
#   $mock->compare_with_account($node, $db, $resource [, $schema])
#   ZendeskMock::decode_cursor($cursor)   (ts, id) of "<ts>.0||<id>|"
#   ZendeskMock::poll_until($timeout, $sub) bounded poll, true if $sub did
# ------------------------------------------------------------------------

use HTTP::Tiny ();
use JSON::PP ();
use MIME::Base64 ();

sub _http
{
	my ($self) = @_;
	$self->{http} //= HTTP::Tiny->new(timeout => 60, keep_alive => 0);
	return $self->{http};
}

sub api_raw
{
	my ($self, $method, $path, $body) = @_;
	my %req;
	if (defined $body)
	{
		$req{content} = JSON::PP->new->utf8->canonical->encode($body);
		$req{headers} = { 'Content-Type' => 'application/json' };
	}
	my $res = $self->_http->request($method, $self->{url} . $path, \%req);
	die "ZendeskMock: $method $path: HTTP $res->{status} $res->{reason}: "
	  . substr($res->{content} // '', 0, 500) . "\n"
	  unless $res->{success};
	return $res->{content};
}

sub api
{
	my ($self, $method, $path, $body) = @_;
	my $raw = $self->api_raw($method, $path, $body);
	return JSON::PP->new->utf8->decode($raw);
}

sub requests       { return $_[0]->api('GET', '/__mock/requests'); }
sub clear_requests { return $_[0]->api('DELETE', '/__mock/requests'); }
sub faults         { return $_[0]->api('GET', '/__mock/faults'); }
sub clear_faults   { return $_[0]->api('DELETE', '/__mock/faults'); }

sub add_fault
{
	my ($self, @specs) = @_;
	return $self->api('POST', '/__mock/faults', \@specs);
}

# The request log entries of requests under $prefix that a 'slow' fault
# still holds (no status yet).
sub slow_request_in_flight
{
	my ($self, $prefix) = @_;
	return grep {
		     index($_->{path}, $prefix) == 0
		  && defined $_->{fault}
		  && $_->{fault} eq 'slow'
		  && !defined $_->{status}
	} @{ $self->requests };
}

sub mutate
{
	my ($self, $resource, $spec) = @_;
	return $self->api('POST', "/__mock/mutate/$resource", $spec);
}

sub account
{
	my ($self, $resource) = @_;
	return $self->api('GET', "/__mock/account/$resource");
}

# Create the extension (if missing), a server named $opt{server} (default
# zendesk) pointing at this mock with the given options, and a user mapping
# for the current user.
sub setup_server
{
	my ($self, $node, $db, %opt) = @_;
	my $server  = $opt{server} // 'zendesk';
	my %options = (url => $self->{url}, %{ $opt{options} // {} });
	my $optlist = join(', ',
		map { "$_ '" . ($options{$_} =~ s/'/''/gr) . "'" } sort keys %options);
	$node->safe_psql($db, qq{
		CREATE EXTENSION IF NOT EXISTS zendesk_fdw;
		CREATE SERVER "$server" FOREIGN DATA WRAPPER zendesk_fdw OPTIONS ($optlist);
		CREATE USER MAPPING FOR CURRENT_USER SERVER "$server"
		  OPTIONS (email 'admin\@example.com', api_token 'test-token');
	});
	return;
}

# Compare a synced table with the mock's account, record by record (the
# local data column against the record as GET /__mock/account serves it).
# Returns a hashref: local_rows, account_rows, distinct_ids (local), missing,
# extra, different, and missing_ids / extra_ids / different_ids (up to 10
# each, comma-separated) for diagnostics.
sub compare_with_account
{
	my ($self, $node, $db, $resource, $schema) = @_;
	$schema //= 'zendesk';
	my $json = $self->api_raw('GET', "/__mock/account/$resource");
	die "ZendeskMock: account JSON contains the quote tag\n"
	  if $json =~ /\$zd_account\$/;
	# (not logged: the statement carries the whole account)
	my $out = $node->safe_psql($db, qq{
		SET log_statement = 'none';
		WITH a AS MATERIALIZED (
		  SELECT (r->>'id')::bigint AS id, r AS record
		  FROM jsonb_array_elements(\$zd_account\$$json\$zd_account\$::jsonb) r),
		l AS MATERIALIZED (SELECT id, data FROM "$schema"."$resource")
		SELECT (SELECT count(*) FROM l),
		       (SELECT count(*) FROM a),
		       (SELECT count(DISTINCT id) FROM l),
		       (SELECT count(*) FROM a WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a.id)),
		       (SELECT count(*) FROM l WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.id = l.id)),
		       (SELECT count(*) FROM a JOIN l USING (id) WHERE l.data IS DISTINCT FROM a.record),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM a WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a.id) ORDER BY id LIMIT 10) x),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM l WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.id = l.id) ORDER BY id LIMIT 10) x),
		       (SELECT coalesce(string_agg(id::text, ','), '') FROM
		         (SELECT id FROM a JOIN l USING (id) WHERE l.data IS DISTINCT FROM a.record ORDER BY id LIMIT 10) x)
	});
	my @v = split /\|/, $out, -1;
	my %r;
	@r{qw(local_rows account_rows distinct_ids missing extra different
		  missing_ids extra_ids different_ids)} = @v;
	return \%r;
}

# Test::More check that compare_with_account found the table equal to the
# account: same row count, no duplicate, missing, extra or different record.
sub is_equal_to_account
{
	my ($self, $node, $db, $resource, $label, $schema) = @_;
	my $r = $self->compare_with_account($node, $db, $resource, $schema);
	my $ok = $r->{account_rows} > 0
	  && $r->{local_rows} == $r->{account_rows}
	  && $r->{distinct_ids} == $r->{local_rows}
	  && $r->{missing} == 0
	  && $r->{extra} == 0
	  && $r->{different} == 0;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	Test::More::ok($ok, "$label: $resource equals the account")
	  or Test::More::diag(join(', ', map { "$_=$r->{$_}" } sort keys %$r));
	return $ok;
}

# A cursor of the mock (and of Zendesk): base64("<ts>.0||<id>|").
sub decode_cursor
{
	my ($cursor) = @_;
	return () unless defined $cursor && $cursor ne '';
	my $plain = MIME::Base64::decode_base64($cursor);
	return () unless $plain =~ /^(\d+)(?:\.\d+)?\|\|(\d+)\|$/;
	return ($1 + 0, $2 + 0);
}

# Call $sub every $interval seconds (default 0.1) until it returns true or
# $timeout seconds have passed; returns its last value.
sub poll_until
{
	my ($timeout, $sub, $interval) = @_;
	my $deadline = Time::HiRes::time() + $timeout;
	while (1)
	{
		my $v = $sub->();
		return $v if $v;
		return $v if Time::HiRes::time() > $deadline;
		Time::HiRes::sleep($interval // 0.1);
	}
}

1;
