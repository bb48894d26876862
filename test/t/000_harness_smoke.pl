# Smoke test of the TAP plumbing (scripts/test.sh runs it with prove):
# a PostgreSQL::Test::Cluster node inits, starts and answers SELECT 1; if
# zendesk_fdw is installed, CREATE EXTENSION succeeds; if scripts/test.sh
# started the mock, its URL (ZD_MOCK_URL) answers the health check.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('smoke');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'cluster answers SELECT 1');

my $available = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'zendesk_fdw'");
SKIP:
{
	skip 'zendesk_fdw is not installed (make install)', 2
	  unless $available eq '1';
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', 'CREATE EXTENSION zendesk_fdw');
	is($ret, 0, 'CREATE EXTENSION zendesk_fdw succeeds')
	  or diag("psql stderr: $stderr");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_foreign_data_wrapper WHERE fdwname = 'zendesk_fdw'"),
		'1',
		'the zendesk_fdw foreign data wrapper exists');
}

SKIP:
{
	skip 'ZD_MOCK_URL is not set (run via scripts/test.sh)', 2
	  unless defined $ENV{ZD_MOCK_URL} && $ENV{ZD_MOCK_URL} ne '';
	ok(defined $ENV{ZD_MOCK} && -f $ENV{ZD_MOCK},
		'ZD_MOCK names the mock server script');
	my $rc = system('curl', '-sf', '--max-time', '10', '-o', '/dev/null',
		"$ENV{ZD_MOCK_URL}/__mock/health");
	is($rc, 0, 'the mock answers GET /__mock/health');
}

$node->stop;
done_testing();
