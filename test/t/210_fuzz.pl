# A bounded libFuzzer run (60 s; ZD_FUZZ_SECONDS) of the response parser and
# the JSON-to-row mapping: fuzz/run.sh builds fuzz/zd_fuzz.c with src/page.c,
# src/row_map.c and src/resource.c under ASan and UBSan, replays every input
# of fuzz/regressions/ (inputs that once crashed or failed), then fuzzes
# from the seed corpus (the fixtures and the bad-input shapes) inside an
# ASan-preloaded backend.  Passes when nothing crashed, no sanitizer
# reported, and no bad input got an internal error (SQLSTATE XX000).
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;

my $secs = $ENV{ZD_FUZZ_SECONDS} // 60;
my @regressions = grep { -f $_ && !/\.md$/ } glob('fuzz/regressions/*');

my $out = `fuzz/run.sh $secs 2>&1`;
my $rc = $? >> 8;
note($out);

is($rc, 0, 'fuzz/run.sh exits 0') or diag($out);
like($out, qr/^fuzz: PASS$/m, 'the fuzz run passes');
like($out, qr/selftest: a planted heap overflow was reported/,
	'the pipeline reports a planted heap overflow (ASan is live in the target)');
like($out, qr/(\d+) of \1 fixture export pages parsed and mapped without an error/,
	'every fixture export page goes through the whole target without an error');
my ($runs, $crashes, $replayed) =
  $out =~ /^fuzz: (\d+) executions .* (\d+) crash\(es\), (\d+) regression input/m;
ok(defined $runs && $runs >= 10000, 'the fuzzer ran at least 10000 inputs (' . ($runs // 'none') . ')');
is($crashes, 0, 'no crash input');
is($replayed, scalar(@regressions), 'every regression input of fuzz/regressions/ was replayed');

done_testing();
