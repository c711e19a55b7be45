/* talos corpus driver for zstd (written for talos, not upstream code).
 * Compresses argv[1] repeated N times at the given level, one-shot and
 * streaming, trains a tiny dictionary, decompresses and checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zstd.h"
#include "zdict.h"

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "the quick brown fox jumps over the lazy dog. ";
    int reps = argc > 2 ? atoi(argv[2]) : 1000;
    int level = argc > 3 ? atoi(argv[3]) : 19;
    size_t tl = strlen(text), n = tl * (size_t)(reps > 0 ? reps : 1), i;
    char *buf = malloc(n), *back = malloc(n), *c, dict[4096];
    size_t cap = ZSTD_compressBound(n), clen, dlen, samples[16], dsz;
    ZSTD_CCtx *cctx;
    ZSTD_inBuffer in;
    ZSTD_outBuffer out;

    if (!buf || !back || !(c = malloc(cap))) return 1;
    for (i = 0; i < n; i++) buf[i] = text[i % tl];

    clen = ZSTD_compress(c, cap, buf, n, level);
    if (ZSTD_isError(clen)) return 1;
    dlen = ZSTD_decompress(back, n, c, clen);
    if (ZSTD_isError(dlen) || dlen != n || memcmp(buf, back, n)) return 1;
    printf("zstd %s level %d: %zu -> %zu\n", ZSTD_versionString(), level, n, clen);

    cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    in.src = buf; in.size = n; in.pos = 0;
    out.dst = c; out.size = cap; out.pos = 0;
    if (ZSTD_isError(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end))) return 1;
    ZSTD_freeCCtx(cctx);
    dlen = ZSTD_decompress(back, n, c, out.pos);
    if (ZSTD_isError(dlen) || dlen != n) return 1;
    printf("stream: %zu -> %zu\n", n, out.pos);

    for (i = 0; i < 16; i++) samples[i] = n / 16;
    dsz = ZDICT_trainFromBuffer(dict, sizeof dict, buf, samples, 16);
    printf("dict: %s\n", ZDICT_isError(dsz) ? ZDICT_getErrorName(dsz) : "trained");
    free(c);
    free(buf);
    free(back);
    return 0;
}
