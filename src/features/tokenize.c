/* tokenize.c - the UTF-8 tokeniser behind the TF-IDF text features.
 *
 * DESIGN: no Unicode database. A code point is a word character when it is
 * an ASCII letter or digit, or any non-ASCII code point outside a short
 * list of punctuation, symbol, space, private-use and emoji blocks; that
 * keeps accented Latin, Greek, Cyrillic, Hebrew, Arabic, Indic and Thai
 * words whole without tables. Case folding covers the alphabets a shop
 * catalog mostly uses (ASCII, Latin-1, Latin Extended-A, basic Greek and
 * Cyrillic, fullwidth ASCII). CJK scripts do not mark word boundaries, so
 * Han, Hiragana, Katakana and Hangul characters are tokens on their own
 * and adjacent pairs are bigram tokens - the standard unigram + bigram
 * scheme of CJK search engines (e.g. Lucene's CJKAnalyzer uses bigrams). */
#include <stdint.h>
#include <string.h>

#include "recfuse/features.h"

#define BAD_CP 0xFFFFFFFFu

/* Decode one code point at s[*i]; advances *i. Invalid or overlong
 * sequences and surrogates give BAD_CP and consume one byte. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i) {
    unsigned c = s[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    int n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
        n = 1;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        (*i)++;
        return BAD_CP;
    }
    if (*i + (size_t)n >= len) { /* not enough bytes left */
        (*i)++;
        return BAD_CP;
    }
    for (int k = 1; k <= n; k++) {
        unsigned b = s[*i + (size_t)k];
        if ((b & 0xC0) != 0x80) {
            (*i)++;
            return BAD_CP;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return BAD_CP;
    }
    *i += (size_t)n + 1;
    return cp;
}

static int encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int is_cjk(uint32_t c) {
    return (c >= 0x1100 && c <= 0x11FF) ||   /* Hangul Jamo */
           (c >= 0x3005 && c <= 0x3007) ||   /* 々 〆 〇 */
           (c >= 0x3040 && c <= 0x309F) ||   /* Hiragana */
           (c >= 0x30A0 && c <= 0x30FF && c != 0x30FB) || /* Katakana, not ・ */
           (c >= 0x3130 && c <= 0x318F) ||   /* Hangul compatibility Jamo */
           (c >= 0x31F0 && c <= 0x31FF) ||   /* Katakana phonetic extensions */
           (c >= 0x3400 && c <= 0x4DBF) ||   /* Han extension A */
           (c >= 0x4E00 && c <= 0x9FFF) ||   /* Han */
           (c >= 0xA960 && c <= 0xA97F) ||   /* Hangul Jamo extended-A */
           (c >= 0xAC00 && c <= 0xD7FF) ||   /* Hangul syllables, Jamo extended-B */
           (c >= 0xF900 && c <= 0xFAFF) ||   /* Han compatibility */
           (c >= 0xFF66 && c <= 0xFF9F) ||   /* halfwidth Katakana */
           (c >= 0x20000 && c <= 0x3134F);   /* Han extensions B-G */
}

/* Non-ASCII code points that separate words. */
static int is_sep(uint32_t c) {
    if (c < 0x80) return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    if (c == BAD_CP) return 1;
    if (c <= 0xBF) return c != 0xAA && c != 0xB5 && c != 0xBA; /* controls, NBSP, ¡..¿ */
    if (c == 0xD7 || c == 0xF7) return 1;                      /* × ÷ */
    if (c >= 0x2000 && c <= 0x2BFF) return 1; /* punctuation, currency, letterlike, arrows,
                                                 maths, technical, enclosed, shapes, dingbats */
    if (c >= 0x2E00 && c <= 0x2E7F) return 1; /* supplemental punctuation */
    if (c >= 0x3000 && c <= 0x303F) return !(c >= 0x3005 && c <= 0x3007); /* CJK punctuation */
    if (c == 0x30FB) return 1;                                /* katakana middle dot */
    if (c >= 0xE000 && c <= 0xF8FF) return 1;                 /* private use */
    if (c >= 0xFE00 && c <= 0xFE0F) return 1;                 /* variation selectors */
    if (c >= 0xFE10 && c <= 0xFE6F) return 1;                 /* vertical, small forms */
    if (c == 0xFEFF) return 1;                                /* BOM / ZWNBSP */
    if (c >= 0xFF00 && c <= 0xFF0F) return 1;                 /* fullwidth punctuation */
    if (c >= 0xFF1A && c <= 0xFF20) return 1;
    if (c >= 0xFF3B && c <= 0xFF40) return 1;
    if (c >= 0xFF5B && c <= 0xFF65) return 1;
    if (c >= 0xFFF0 && c <= 0xFFFF) return 1;                 /* specials */
    if (c >= 0x1F000 && c <= 0x1FAFF) return 1;               /* emoji, symbols */
    if (c >= 0xE0000 && c <= 0xE007F) return 1;               /* tags */
    if (c >= 0xF0000) return 1;                               /* private use planes */
    return 0;
}

static uint32_t fold(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x137) return c | 1;
    if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return c | 1;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A) return c - 0xFF21 + 'a';
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 0xFF41 + 'a';
    if (c >= 0xFF10 && c <= 0xFF19) return c - 0xFF10 + '0';
    return c;
}

int rf_tokenize(const char *text, size_t len, rf_token_cb cb, void *ud) {
    if (!text) return 0;
    const unsigned char *s = (const unsigned char *)text;
    char word[RF_TOKEN_MAX + 4];
    size_t wn = 0;
    int too_long = 0;
    char prev[4], pair[8];
    int prev_n = 0; /* bytes of the previous CJK character, 0 if none adjacent */
    size_t i = 0;
    int rc;
    while (i <= len) {
        uint32_t c = i < len ? utf8_next(s, len, &i) : (i++, (uint32_t)' ');
        int cjk = c != BAD_CP && is_cjk(c);
        int word_char = !cjk && !is_sep(c);
        if (word_char) {
            char b[4];
            int n = encode(fold(c), b);
            if (wn + (size_t)n > RF_TOKEN_MAX) too_long = 1;
            else {
                memcpy(word + wn, b, (size_t)n);
                wn += (size_t)n;
            }
            prev_n = 0;
            continue;
        }
        if (wn > 0 || too_long) { /* end of a word */
            if (!too_long && wn > 0 && (rc = cb(ud, word, wn))) return rc;
            wn = 0;
            too_long = 0;
        }
        if (!cjk) {
            prev_n = 0;
            continue;
        }
        char b[4];
        int n = encode(fold(c), b);
        if ((rc = cb(ud, b, (size_t)n))) return rc;
        if (prev_n) {
            memcpy(pair, prev, (size_t)prev_n);
            memcpy(pair + prev_n, b, (size_t)n);
            if ((rc = cb(ud, pair, (size_t)(prev_n + n)))) return rc;
        }
        memcpy(prev, b, (size_t)n);
        prev_n = n;
    }
    return 0;
}
