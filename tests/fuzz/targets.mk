# The fuzz targets: FUZZ += NAME, and fuzz_NAME_SRC, the sources (beside
# tests/fuzz/NAME.c) that the target is built from. See the Makefile.
