#!/usr/bin/perl
# help-vs-man.pl PROG HELP PAGE: where PROG's man page PAGE does not say an
# option's range or default as its --help (saved in the file HELP) shows
# it, one line each; nothing when they agree.
#
# An option of --help starts a line with two blanks and "--"; lines
# indented further continue it. Its text may end in a parenthesis of
# "MIN to MAX", "default: D" or both ("MIN to MAX; default: D"). The page's
# item for it runs from ".It ... Fl -NAME" to the next .It or .El, with the
# roff escapes \- and \& taken out. A range needs the words "from MIN to
# MAX" on one line of the item; a default D with no blank and no "$" needs
# a line that is exactly "The default is D.".
use strict;
use warnings;

my ($prog, $help, $page) = @ARGV;

sub slurp {
	my ($f) = @_;
	open(my $fh, '<', $f) or die "help-vs-man: $f: $!\n";
	my @l = <$fh>;
	close $fh;
	chomp @l;
	return @l;
}

# The options of --help, in order: [name, joined text].
my (@opts, $cur);
for my $l (slurp($help)) {
	if ($l =~ /^  --([a-z0-9][a-z0-9-]*)/) {
		$cur = [$1, $l];
		push @opts, $cur;
	} elsif ($cur && $l =~ /^   +(\S.*)$/) {
		$cur->[1] .= " $1";
	} else {
		undef $cur;
	}
}

my @page = map { s/\\-/-/g; s/\\&//g; $_ } slurp($page);

# The lines of the item of --name, or undef when the page has none.
sub item {
	my ($name) = @_;
	my ($in, @lines);
	for my $l (@page) {
		if ($l =~ /^\.(It|El)\b/) {
			last if $in;
			$in = $l =~ /^\.It\b.*\bFl -\Q$name\E(?![\w-])/;
			next;
		}
		push @lines, $l if $in;
	}
	return $in || @lines ? \@lines : undef;
}

for my $o (@opts) {
	my ($name, $text) = @$o;
	next unless $text =~ /\(([^()]*)\)\s*$/;
	my $paren = $1;
	my ($min, $max, $dflt);
	if ($paren =~ /^(\S+) to (\S+?)(?:; default: (.*))?$/) {
		($min, $max, $dflt) = ($1, $2, $3);
	} elsif ($paren =~ /^default: (.*)$/) {
		$dflt = $1;
	} else {
		next;
	}
	my $item = item($name);
	if (!$item) {
		print "$prog --$name: no item '.It Fl -$name' in the man page\n";
		next;
	}
	if (defined $min &&
	    !grep { /(?<![\w-])from \Q$min\E to \Q$max\E(?![\w])/ } @$item) {
		print "$prog --$name: --help shows $min to $max; the man page " .
		    "lacks 'from $min to $max'\n";
	}
	if (defined $dflt && $dflt !~ /[\s\$]/ &&
	    !grep { $_ eq "The default is $dflt." } @$item) {
		print "$prog --$name: --help shows default: $dflt; the man " .
		    "page lacks a line 'The default is $dflt.'\n";
	}
}
