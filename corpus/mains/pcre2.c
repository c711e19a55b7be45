/* talos corpus driver for PCRE2 (written for talos, not upstream code).
 * Compiles argv[1] as a pattern, matches it against argv[2] with the
 * interpreter, the DFA matcher and (where available) the JIT, and runs a
 * global substitution. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdio.h>
#include <string.h>
#include "pcre2.h"

int main(int argc, char **argv)
{
    const char *pat = argc > 1 ? argv[1] : "(?<word>\\b\\w+)\\s+(?:fox|dog)\\b";
    const char *subj = argc > 2 ? argv[2] : "the quick brown fox jumps over the lazy dog";
    int errcode, rc, ws[64];
    PCRE2_SIZE erroff, *ov, outlen;
    PCRE2_UCHAR out[512], msg[256];
    pcre2_code *re;
    pcre2_match_data *md;
    size_t len = strlen(subj);

    re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &errcode,
                       &erroff, NULL);
    if (!re) {
        pcre2_get_error_message(errcode, msg, sizeof msg);
        fprintf(stderr, "compile error at %zu: %s\n", (size_t)erroff, (char *)msg);
        return 1;
    }
    md = pcre2_match_data_create_from_pattern(re, NULL);
    rc = pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, NULL);
    if (rc > 0) {
        ov = pcre2_get_ovector_pointer(md);
        printf("match at %zu..%zu\n", (size_t)ov[0], (size_t)ov[1]);
    } else {
        printf("no match (%d)\n", rc);
    }
    rc = pcre2_dfa_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, NULL, ws, 64);
    printf("dfa: %d\n", rc);
    if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0) {
        rc = pcre2_jit_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, NULL);
        printf("jit: %d\n", rc);
    }
    outlen = sizeof out;
    rc = pcre2_substitute(re, (PCRE2_SPTR)subj, len, 0, PCRE2_SUBSTITUTE_GLOBAL, md, NULL,
                          (PCRE2_SPTR) "<${word}>", PCRE2_ZERO_TERMINATED, out, &outlen);
    if (rc >= 0) printf("%s\n", (char *)out);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return 0;
}
