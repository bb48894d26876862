# Secrets stay quiet (field-cases.md invariant I5, field case F24): whatever
# goes wrong -- bad API token, bad OAuth token, 403, 429, 5xx, 504 page
# shrinking, cut and reset connections, HTML and malformed bodies, a rejected
# cursor, a redirect to another origin -- no token and no Authorization value
# appears in the server log (at DEBUG1), in a client error, in EXPLAIN, or in
# zendesk_sync_state / zendesk_sync_runs.  The log also names each retry's
# cause (rate limit vs. transient server error, field case F12).
#
# Its own cluster and mock: log_statement is off because the user's own
# CREATE USER MAPPING carries the token and PostgreSQL would log it as typed;
# everything the extension logs is checked.
use strict;
use warnings;

use MIME::Base64 ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZendeskMock;

my @SECRETS = ('test-token', 'wrong-secret-token', 'test-oauth', 'super-secret-token');
# the Basic credentials as sent on the wire, too
push @SECRETS,
  map { MIME::Base64::encode_base64("admin\@example.com/token:$_", '') }
  ('test-token', 'wrong-secret-token');

my $mock = ZendeskMock->start(
	args => [
		'--tickets', 30, '--users', 10, '--organizations', 5,
		'--events-per-ticket', 1
	]);

my $node = PostgreSQL::Test::Cluster->new('field_secrets');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
zendesk_fdw.holdback = 2
zendesk_fdw.max_retry_wait = 1
log_min_messages = debug1
log_statement = none
log_error_verbosity = verbose
});
$node->start;
my $db = 'postgres';
$mock->setup_server($node, $db, options => { page_size => 10 });

my @client_output;    # everything psql printed, checked at the end

sub run_sql
{
	my ($sql) = @_;
	# verbose: the SQLSTATE, detail and hint are checked too
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	push @client_output, $out, $err;
	return ($ret, $out, $err);
}

sub sync_all
{
	my ($server) = @_;
	my (undef, $out) = run_sql(
		"SELECT stream || ':' || status FROM zendesk_sync('$server') ORDER BY 1");
	return $out;
}

$node->safe_psql($db, q{
	CREATE FOREIGN TABLE t_tickets (id bigint, subject text) SERVER zendesk OPTIONS (resource 'tickets');
	CREATE FOREIGN TABLE t_orgs (id bigint, name text) SERVER zendesk OPTIONS (resource 'organizations');
});

# ---- good credentials, every kind of fault the retry paths log
$mock->add_fault(
	{ kind => '429', path => '/incremental/tickets/cursor', retry_after => 1 },
	{ kind => '503', path => '/incremental/users/cursor', retry_after => 1 },
	{ kind => '500', path => '/incremental/users/cursor' },
	{ kind => '502', path => '/incremental/organizations' },
	{ kind => '504', path => '/incremental/ticket_events', min_per_page => 5 },
	{ kind => 'truncated', path => '/incremental/organizations', after => 1 },
	{ kind => 'reset', path => '/incremental/tickets/cursor', after => 2 },
	{ kind => 'reset_mid_body', path => '/incremental/users/cursor', after => 3 });
is( sync_all('zendesk'),
	"organizations:ok\nticket_events:ok\ntickets:ok\nusers:ok",
	'a sync through 429, 5xx, 504, cut and reset connections completes');
for my $r (qw(tickets ticket_events users organizations))
{
	my $c = $mock->compare_with_account($node, $db, $r);
	is("$c->{missing}/$c->{extra}/$c->{different}", '0/0/0',
		"$r equal to the account after the faults");
}

# a rejected cursor, an HTML page, malformed JSON, a foreign redirect
$node->safe_psql($db,
	q{UPDATE zendesk_sync_state SET cursor = 'garbage+/=' WHERE stream = 'tickets'});
$mock->clear_faults;
$mock->add_fault(
	{ kind => 'html_200', path => '/incremental/users/cursor' },
	{
		kind => 'json_body',
		path => '/incremental/organizations',
		body => '{"organizations": [{"id": 1,'
	});
sync_all('zendesk');
$mock->add_fault(
	{
		kind    => 'status',
		status  => 302,
		path    => '/incremental/organizations',
		headers => { Location => 'http://127.0.0.2:9/steal?token=x' }
	});
my ($ret, $out, $err) = run_sql('SELECT count(*) FROM t_orgs');
like($err, qr/redirect to another origin refused/, 'a redirect away is refused');
run_sql('EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM t_tickets');

# ---- a wrong API token
$node->safe_psql($db,
	q{ALTER USER MAPPING FOR CURRENT_USER SERVER zendesk OPTIONS (SET api_token 'wrong-secret-token')});
$mock->clear_requests;
($ret, $out, $err) = run_sql('SELECT count(*) FROM t_tickets');
like($err, qr/28000.*Zendesk rejected the credentials/s, 'a wrong API token is 28000');
is(sync_all('zendesk'),
	"organizations:failed\nticket_events:failed\ntickets:failed\nusers:failed",
	'a sync with a wrong API token fails');
is(scalar @{ $mock->requests }, 2, 'one request for the scan, one for the whole sync');

# ---- a wrong OAuth token, then the right one with faults
$node->safe_psql($db, q{
	ALTER USER MAPPING FOR CURRENT_USER SERVER zendesk
	  OPTIONS (DROP email, DROP api_token, ADD oauth_token 'super-secret-token')});
($ret, $out, $err) = run_sql('SELECT count(*) FROM t_tickets');
like($err, qr/28000.*invalid_token/s, 'an expired OAuth token is 28000');
sync_all('zendesk');
$node->safe_psql($db,
	q{ALTER USER MAPPING FOR CURRENT_USER SERVER zendesk OPTIONS (SET oauth_token 'test-oauth')});
$mock->add_fault({ kind => '503', path => '/incremental/tickets/cursor', retry_after => 1 });
is($node->safe_psql($db, 'SELECT count(*) > 0 FROM t_tickets'), 't', 'OAuth works after a 503');

# ---- 403 (not an admin)
$mock->api('POST', '/__mock/config', { forbidden_prefixes => ['incremental'] });
($ret, $out, $err) = run_sql('SELECT count(*) FROM t_tickets');
like($err, qr/42501.*Zendesk refused access/s, 'not an admin is 42501');
sync_all('zendesk');
$mock->api('POST', '/__mock/config', { forbidden_prefixes => [] });

# ---- nothing anywhere holds a secret
my $stored = $node->safe_psql($db, q{
	SELECT string_agg(coalesce(last_error, '') || coalesce(cursor, ''), E'\n') FROM zendesk_sync_state});
$stored .= $node->safe_psql($db, q{SELECT string_agg(coalesce(message, ''), E'\n') FROM zendesk_sync_runs});
my $activity = $node->safe_psql($db,
	q{SELECT string_agg(coalesce(query, ''), E'\n') FROM pg_stat_activity});
$node->stop;
my $log = slurp_file($node->logfile);
my $client = join("\n", grep { defined } @client_output);
for my $secret (@SECRETS)
{
	unlike($log,      qr/\Q$secret\E/, "server log does not contain $secret");
	unlike($client,   qr/\Q$secret\E/, "client messages do not contain $secret");
	unlike($stored,   qr/\Q$secret\E/, "sync state and runs do not contain $secret");
	unlike($activity, qr/\Q$secret\E/, "pg_stat_activity does not contain $secret");
}

# the log says what each retry was about (field case F12)
like($log, qr/returned 429 \(rate limit\), retrying/, 'a 429 is logged as a rate limit');
like($log, qr/returned 503 \(transient server error\), retrying/,
	'a 503 is logged as a transient server error');
unlike($log, qr/returned 50\d \(rate limit\)/, 'no 5xx is called a rate limit');
like($log, qr/gateway timeout \(HTTP 504\), retrying the same position with per_page 5 instead of 10/,
	'a 504 halves per_page');
like($log, qr/cursor rejected with HTTP 400/, 'the rejected cursor is logged');
unlike($log, qr/terminated by signal/, 'no backend crashed');

done_testing();
