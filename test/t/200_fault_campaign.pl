# The fault campaign of zendesk_sync() in CI: the fixed schedules of seeds
# 1..30 (test/campaign/Campaign.pm describes a schedule and its checks; the
# long mode is test/campaign/run.sh --schedules 300).
#
# Every schedule is one subtest: a fresh mock account, HTTP faults at
# seed-chosen requests, SIGKILLs of the sync worker and immediate shutdowns
# at seed-chosen points, records changed while syncs run; then syncs without
# faults until every stream is ok, and the checks: local rows equal the
# account field for field, nothing missing, duplicated or older, checkpoints
# never ahead of the data nor moving backwards, nothing left 'running', no
# crash in the server log but the harness's own kills.  A failing schedule
# prints its JSON and the command that replays it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../campaign";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Campaign;
use ZendeskMock;

my @SEEDS = (1 .. 30);

my $mock = ZendeskMock->start(args => [ '--quiet' ]);
my $node = PostgreSQL::Test::Cluster->new('fault_campaign');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', Campaign::cluster_conf());
$node->start;

my $campaign = Campaign->new(node => $node, mock => $mock);
$campaign->run_schedule($_) for @SEEDS;

note("campaign figures: $_") for $campaign->summary;

# the campaign exercised what it claims to
my $s = $campaign->{stats};
my $kills = 0;
$kills += $_ for values %{ $s->{kills} };
cmp_ok($kills, '>=', 5, "the worker was killed $kills times");
cmp_ok(scalar(keys %{ $s->{kills} }), '>=', 3,
	'kills landed in at least 3 phases: ' . join(', ', sort keys %{ $s->{kills} }));
cmp_ok($s->{immediate}, '>=', 1, "the cluster was shut down immediately $s->{immediate} times");
my @kinds_hit = grep { $s->{faults}{$_} > 0 } keys %{ $s->{faults} };
cmp_ok(scalar(@kinds_hit), '>=', 12, 'faults of at least 12 kinds were injected: ' . join(', ', sort @kinds_hit));
cmp_ok($s->{mutations}, '>=', 20, "$s->{mutations} records changed during or between syncs");
cmp_ok($s->{records_compared}, '>', 10000, "$s->{records_compared} records compared");

$node->stop;
$mock->stop;
done_testing();
