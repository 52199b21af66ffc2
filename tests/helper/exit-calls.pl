#!/usr/bin/perl
# exit-calls.pl FILE...: every call that chooses an exit status in C source,
# one a line: "FILE:LINE: CALL ARG", ARG being its first argument with its
# blanks squeezed. The calls are die(), die_kind(), exit(), _exit() and
# usage(); comments and strings are blanked first, and a call may span
# lines. Declarations and definitions (an argument that starts with a
# type) are left out.
use strict;
use warnings;

for my $file (@ARGV) {
	open(my $fh, '<', $file) or die "exit-calls: $file: $!\n";
	local $/;
	my $src = <$fh>;
	close $fh;
	# keep the newlines, so that offsets still give line numbers
	$src =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')}
		{ (my $b = $1) =~ s/[^\n]/ /g; $b }gse;
	while ($src =~ /(?<![\w.>])(die_kind|die|_exit|exit|usage)\s*\(
	    \s*((?:[^,()]|\([^()]*\))*)[,)]/gx) {
		my ($call, $arg, $at) = ($1, $2, $-[0]);
		next if $arg =~ /^(?:int|const|void|long|unsigned)\b/;
		$arg =~ s/\s+/ /g;
		$arg =~ s/ $//;
		my $line = 1 + (substr($src, 0, $at) =~ tr/\n//);
		print "$file:$line: $call $arg\n";
	}
}
