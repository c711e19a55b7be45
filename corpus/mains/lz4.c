/* talos corpus driver for lz4 (written for talos, not upstream code).
 * Compresses argv[1] repeated N times with LZ4 (fast), LZ4HC and the LZ4
 * frame format, decompresses each and checks the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lz4.h"
#include "lz4hc.h"
#include "lz4frame.h"

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "the quick brown fox jumps over the lazy dog. ";
    int reps = argc > 2 ? atoi(argv[2]) : 1000;
    int level = argc > 3 ? atoi(argv[3]) : LZ4HC_CLEVEL_DEFAULT;
    int tl = (int)strlen(text), n = tl * (reps > 0 ? reps : 1), i, cap, clen, dlen;
    char *buf = malloc((size_t)n), *c, *back = malloc((size_t)n);
    size_t fcap, flen, src_sz, dst_sz;
    LZ4F_decompressionContext_t dctx;
    LZ4F_preferences_t prefs;

    if (!buf || !back) return 1;
    for (i = 0; i < n; i++) buf[i] = text[i % tl];
    cap = LZ4_compressBound(n);
    if (!(c = malloc((size_t)cap))) return 1;

    clen = LZ4_compress_default(buf, c, n, cap);
    dlen = LZ4_decompress_safe(c, back, clen, n);
    if (dlen != n || memcmp(buf, back, (size_t)n)) return 1;
    printf("lz4 %s fast: %d -> %d\n", LZ4_versionString(), n, clen);

    clen = LZ4_compress_HC(buf, c, n, cap, level);
    dlen = LZ4_decompress_safe(c, back, clen, n);
    if (dlen != n || memcmp(buf, back, (size_t)n)) return 1;
    printf("lz4hc level %d: %d -> %d\n", level, n, clen);
    free(c);

    memset(&prefs, 0, sizeof prefs);
    prefs.compressionLevel = level;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    fcap = LZ4F_compressFrameBound((size_t)n, &prefs);
    if (!(c = malloc(fcap))) return 1;
    flen = LZ4F_compressFrame(c, fcap, buf, (size_t)n, &prefs);
    if (LZ4F_isError(flen)) return 1;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return 1;
    src_sz = flen;
    dst_sz = (size_t)n;
    if (LZ4F_decompress(dctx, back, &dst_sz, c, &src_sz, NULL) != 0 || dst_sz != (size_t)n ||
        memcmp(buf, back, (size_t)n))
        return 1;
    LZ4F_freeDecompressionContext(dctx);
    printf("lz4frame: %d -> %zu\n", n, flen);
    free(c);
    free(buf);
    free(back);
    return 0;
}
