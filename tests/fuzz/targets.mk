# The fuzz targets: FUZZ += NAME, and fuzz_NAME_SRC, the sources (beside
# tests/fuzz/NAME.c) that the target is built from. See the Makefile.

# the HTTP request reader both servers share (lib/httpreq.c)
FUZZ += httpreq
fuzz_httpreq_SRC = lib/httpreq.c

