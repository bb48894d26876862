# Large records, small pages, bounded memory (field case F13).  Twenty
# tickets carry 3 MB descriptions (60 MB in all) and the gateway answers 504
# to any cursor request of 4 or more records: the sync halves per_page on the
# same cursor until pages build, stores every description byte for byte, and
# its private memory stays at the size of a page or two, not of the export
# (it is sampled from /proc while the worker runs).
use strict;
use warnings;

use Digest::MD5 ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use ZendeskMock;

plan skip_all => 'needs /proc' unless -d '/proc/self';

my $BIG       = 16;                # tickets with a 3 MB description (48 MB)
my $LIMIT_KB  = 128 * 1024;        # private memory bound for the worker
my $mock = ZendeskMock->start(args => [ '--tickets', 30, '--users', 0, '--organizations', 0 ]);

my $node = PostgreSQL::Test::Cluster->new('field_large_pages');
$node->init;
$node->append_conf('postgresql.conf', "zendesk_fdw.holdback = 2\nzendesk_fdw.max_retry_wait = 1\n");
$node->start;
my $db = 'postgres';
$mock->setup_server($node, $db, options => { page_size => 8 });

# 3 MB of multibyte text with quotes, backslashes and newlines, per ticket
my $now = $mock->api('GET', '/__mock/clock')->{now};
my @ids = map { $_->{id} } @{ $mock->account('tickets') };
my %md5;
for my $id (@ids[ 0 .. $BIG - 1 ])
{
	my $text = "ticket $id: " . ("Zendesk \x{fc}\x{20ac} \"quoted\" \\ back\nslash $id " x 85000);
	my $bytes = $text;
	utf8::encode($bytes);
	$md5{$id} = Digest::MD5::md5_hex($bytes);
	# JSON by hand: JSON::PP takes seconds per megabyte
	(my $json = $bytes) =~ s/(["\\])/\\$1/g;
	$json =~ s/\n/\\n/g;
	my $res = $mock->_http->request('POST', $mock->url . '/__mock/mutate/tickets', {
		headers => { 'Content-Type' => 'application/json' },
		content => qq({"op":"update","id":$id,"at":) . ($now - 600)
		  . qq(,"changes":{"description":"$json"}}) });
	die "mutate $id: $res->{status}\n" unless $res->{success};
	cmp_ok(length($bytes), '>', 3_000_000, "ticket $id has a 3 MB description") if $id == $ids[0];
}
$mock->add_fault({ kind => '504', path => '/incremental/tickets/cursor',
	query => { cursor => '*' }, min_per_page => 4, times => -1 });

$node->safe_psql($db, q{SELECT count(*) FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false)});

# sample the worker's private memory until it exits
my ($pid, $peak_kb, $samples) = (undef, 0, 0);
my $done = ZendeskMock::poll_until(
	120,
	sub {
		my $p = $node->safe_psql($db,
			q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync'});
		$pid = $p if $p ne '';
		return 1 if $p eq '' && defined $pid;
		if ($p ne '' && open(my $fh, '<', "/proc/$p/status"))
		{
			while (<$fh>)
			{
				if (/^RssAnon:\s+(\d+) kB/)
				{
					$peak_kb = $1 if $1 > $peak_kb;
					$samples++;
				}
			}
			close $fh;
		}
		return 0;
	},
	0.02);
ok($done, 'the sync worker finished');
cmp_ok($samples, '>', 5, 'memory was sampled while the worker ran');
cmp_ok($peak_kb, '<', $LIMIT_KB, "worker private memory peak ${peak_kb} kB stays bounded");
note("peak RssAnon of the worker: $peak_kb kB over $samples samples");

is( $node->safe_psql($db, q{SELECT status FROM zendesk_sync_state WHERE stream = 'tickets'}),
	'ok', 'the sync completed');
my $reqs = $mock->requests;
my @timeouts = grep { $_->{status} == 504 } @$reqs;
ok(scalar @timeouts, 'the gateway timed out (' . scalar(@timeouts) . ' times)');
my $retried_right = 1;
for my $i (0 .. $#$reqs - 1)
{
	next unless $reqs->[$i]{status} == 504;
	my ($a, $b) = ($reqs->[$i]{query}, $reqs->[ $i + 1 ]{query});
	$retried_right = 0
	  unless $a->{cursor} eq $b->{cursor} && $b->{per_page} * 2 == $a->{per_page};
}
ok($retried_right, 'every 504 was followed by the same cursor with half the per_page');

is($node->safe_psql($db, 'SELECT count(*) = count(DISTINCT id) FROM zendesk.tickets'), 't', 'no duplicates');
is($node->safe_psql($db, 'SELECT count(*) FROM zendesk.tickets'), scalar(@ids), 'every ticket stored');
my $local = $node->safe_psql($db,
	q{SELECT string_agg(id || ':' || md5(description), ',' ORDER BY id) FROM zendesk.tickets WHERE octet_length(description) > 1000000});
my %got = map { split /:/ } split /,/, $local;
is(scalar keys %got, $BIG, "all $BIG large descriptions are stored");
is_deeply(\%got, \%md5, 'every large description is stored byte for byte (md5)');

$node->stop;
done_testing();
