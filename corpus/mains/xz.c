/* talos corpus driver for liblzma from xz (written for talos, not upstream code).
 * Encodes argv[1] repeated N times as an .xz stream (with the x86 BCJ and
 * delta filters in a second pass), decodes both and checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lzma.h"

static int decode(const uint8_t *c, size_t clen, uint8_t *back, size_t n)
{
    uint64_t memlimit = UINT64_MAX;
    size_t in_pos = 0, out_pos = 0;
    if (lzma_stream_buffer_decode(&memlimit, 0, NULL, c, &in_pos, clen, back, &out_pos, n) != LZMA_OK)
        return 1;
    return out_pos != n;
}

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "the quick brown fox jumps over the lazy dog. ";
    int reps = argc > 2 ? atoi(argv[2]) : 1000;
    uint32_t preset = argc > 3 ? (uint32_t)atoi(argv[3]) : 6;
    size_t tl = strlen(text), n = tl * (size_t)(reps > 0 ? reps : 1), i, cap, clen = 0;
    uint8_t *buf = malloc(n), *back = malloc(n), *c;
    lzma_options_lzma opt;
    lzma_options_delta delta;
    lzma_filter filters[4];

    cap = lzma_stream_buffer_bound(n);
    if (!buf || !back || !(c = malloc(cap))) return 1;
    for (i = 0; i < n; i++) buf[i] = (uint8_t)text[i % tl];

    if (lzma_easy_buffer_encode(preset, LZMA_CHECK_CRC64, NULL, buf, n, c, &clen, cap) != LZMA_OK)
        return 1;
    if (decode(c, clen, back, n) || memcmp(buf, back, n)) return 1;
    printf("liblzma %s preset %u: %zu -> %zu\n", lzma_version_string(), preset, n, clen);

    if (lzma_lzma_preset(&opt, preset)) return 1;
    memset(&delta, 0, sizeof delta);
    delta.type = LZMA_DELTA_TYPE_BYTE;
    delta.dist = 4;
    filters[0].id = LZMA_FILTER_X86;   filters[0].options = NULL;
    filters[1].id = LZMA_FILTER_DELTA; filters[1].options = &delta;
    filters[2].id = LZMA_FILTER_LZMA2; filters[2].options = &opt;
    filters[3].id = LZMA_VLI_UNKNOWN;  filters[3].options = NULL;
    clen = 0;
    if (lzma_stream_buffer_encode(filters, LZMA_CHECK_SHA256, NULL, buf, n, c, &clen, cap) != LZMA_OK)
        return 1;
    if (decode(c, clen, back, n) || memcmp(buf, back, n)) return 1;
    printf("x86+delta+lzma2: %zu -> %zu\n", n, clen);
    free(c);
    free(buf);
    free(back);
    return 0;
}
