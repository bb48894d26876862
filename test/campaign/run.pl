# test/campaign/run.pl: the fault campaign outside CI (see run.sh).
#
#   perl run.pl [--schedules N] [--first-seed S] [--seed S ...]
#
# Runs N schedules with seeds S, S+1, ... (default 300 from 1001: CI runs
# seeds 1-30), or only the seeds given with --seed, against one cluster and
# one mock, and ends with the campaign's figures and `N passed, M failed`.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin";
use Getopt::Long;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Campaign;
use ZendeskMock;

my $schedules  = 300;
my $first_seed = 1001;
my @seeds;
GetOptions(
	'schedules=i'  => \$schedules,
	'first-seed=i' => \$first_seed,
	'seed=i'       => \@seeds) or die "usage: run.pl [--schedules N] [--first-seed S] [--seed S ...]\n";
@seeds = ($first_seed .. $first_seed + $schedules - 1) unless @seeds;

my $mock = ZendeskMock->start(args => [ '--quiet' ]);
my $node = PostgreSQL::Test::Cluster->new('campaign');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', Campaign::cluster_conf());
$node->start;

my $campaign = Campaign->new(node => $node, mock => $mock);
note("campaign: " . scalar(@seeds) . " schedules, seeds $seeds[0] .. $seeds[-1]");
for my $seed (@seeds)
{
	$campaign->run_schedule($seed);
	if ($campaign->{stats}{schedules} % 10 == 0)
	{
		note("progress: $_") for $campaign->summary;
	}
}
$node->stop('fast');
$mock->stop;
done_testing();

# PostgreSQL::Test::Utils sends plain STDOUT to the log file; the TAP
# output handle reaches the terminal (and the log)
my $out = Test::More->builder->output;
print $out "\n==================== fault campaign ====================\n";
print $out "$_\n" for $campaign->summary;
print $out sprintf("%d passed, %d failed\n", $campaign->{stats}{passed}, $campaign->{stats}{failed});
exit($campaign->{stats}{failed} ? 1 : 0);
