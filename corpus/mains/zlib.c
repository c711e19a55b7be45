/* talos corpus driver for zlib (written for talos, not upstream code).
 * Compresses argv[1] (or a built-in text) repeated N times with deflate at the
 * given level, as raw, zlib and gzip streams, inflates it back, checks it,
 * and prints checksums. Keeps deflate, inflate, crc32, adler32 and gz* live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zlib.h"

static int roundtrip(const unsigned char *in, uLong n, int level, int wbits)
{
    z_stream s;
    unsigned char *out, *back;
    uLong cap = deflateBound(NULL, n) + 64, clen, blen;
    int rc;

    out = malloc(cap);
    back = malloc(n + 1);
    if (!out || !back) return 1;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 1;
    s.next_in = (Bytef *)in; s.avail_in = (uInt)n;
    s.next_out = out; s.avail_out = (uInt)cap;
    rc = deflate(&s, Z_FINISH);
    clen = s.total_out;
    deflateEnd(&s);
    if (rc != Z_STREAM_END) return 1;

    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, wbits) != Z_OK) return 1;
    s.next_in = out; s.avail_in = (uInt)clen;
    s.next_out = back; s.avail_out = (uInt)n + 1;
    rc = inflate(&s, Z_FINISH);
    blen = s.total_out;
    inflateEnd(&s);
    if (rc != Z_STREAM_END || blen != n || memcmp(in, back, n) != 0) return 1;
    printf("wbits %3d level %d: %lu -> %lu bytes\n", wbits, level, n, clen);
    free(out);
    free(back);
    return 0;
}

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "the quick brown fox jumps over the lazy dog. ";
    int reps = argc > 2 ? atoi(argv[2]) : 1000;
    int level = argc > 3 ? atoi(argv[3]) : Z_DEFAULT_COMPRESSION;
    size_t tl = strlen(text), n = tl * (size_t)(reps > 0 ? reps : 1);
    unsigned char *buf = malloc(n), *c;
    uLongf clen, blen;
    size_t i;

    if (!buf) return 1;
    for (i = 0; i < n; i++) buf[i] = (unsigned char)text[i % tl];
    printf("zlib %s crc32 %08lx adler32 %08lx\n", zlibVersion(),
           crc32(0L, buf, (uInt)n), adler32(1L, buf, (uInt)n));
    if (roundtrip(buf, n, level, -15) || roundtrip(buf, n, level, 15) ||
        roundtrip(buf, n, level, 31)) {
        fprintf(stderr, "roundtrip failed\n");
        return 1;
    }
    clen = compressBound(n);
    c = malloc(clen);
    blen = n;
    if (!c || compress2(c, &clen, buf, n, 9) != Z_OK || uncompress(buf, &blen, c, clen) != Z_OK)
        return 1;
    if (argc > 4) { /* optional: write a .gz file */
        gzFile f = gzopen(argv[4], "wb9");
        if (!f || gzwrite(f, buf, (unsigned)n) <= 0 || gzclose(f) != Z_OK) return 1;
    }
    free(c);
    free(buf);
    return 0;
}
