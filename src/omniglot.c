/* omniglot.c - Omniglot loaders: numpy .npz + alphabet_ranges.tsv (format A)
 * and the official zips of PNGs (format B), into one tnmtl_dataset with a
 * task per alphabet.  See tnmtl/omniglot.h for the formats and conventions.
 *
 * Both loaders first build a catalogue (alphabets, their characters and
 * where each drawing lives), then select the alphabets, allocate the dataset
 * once, and decode every image straight into its final place (through one
 * 105x105 scratch image when downsampling).  images.npy (212 MB for the
 * background set) is streamed from the zip, never held in memory.
 */
#include "tnmtl/omniglot.h"
#include "tnmtl/npy.h"
#include "image.h"
#include "util.h"
#include "zipread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define OG_N 105                          /* native image side               */
#define OG_PIXELS (OG_N * OG_N)
#define OG_DRAWINGS 20                    /* drawings per character (npz)    */
#define OG_MAX_PNG_BYTES ((uint64_t)1 << 20)   /* one PNG member (~300 B real) */
#define OG_MAX_TSV_BYTES ((size_t)1 << 20)
#define OG_MAX_NPY_HEADER ((size_t)1 << 17)
#define OG_DEFAULT_MAX_BYTES ((size_t)4 << 30)
#define OG_MAX_NAME 200                   /* alphabet name length            */
#define OG_MAX_PNGS ((int64_t)1 << 22)    /* PNG members listed from the zips */

enum { SET_BG = 0, SET_EV = 1, N_SETS = 2 };
static const char *const set_name[N_SETS] = {"background", "evaluation"};
static const char *const npz_file[N_SETS] = {"images_background.npz", "images_evaluation.npz"};
static const char *const zip_file[N_SETS] = {"images_background.zip", "images_evaluation.zip"};

tnmtl_status tnmtl_omniglot_downsample(const uint8_t *src, int n, uint8_t *dst, int s, tnmtl_error *err)
{
    if (n < 1 || n > 4096 || s < 1 || s > n)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "downsample: cannot map %dx%d to %dx%d (need 1 <= size <= %d)",
                          n, n, s, s, n > 4096 ? 4096 : n);
    tnmtl_resizer r;
    tnmtl_status st = tnmtl_resizer_init(&r, n, n, s, s, 1, err);
    if (st) return st;
    tnmtl_resizer_apply(&r, src, dst);
    tnmtl_resizer_free(&r);
    return TNMTL_OK;
}

/* ------------------------------------------------------------------------ */
/* The catalogue shared by both formats.                                     */

typedef struct og_alpha {
    char *name;
    int set;                 /* npz: SET_BG / SET_EV; png: archive index      */
    int64_t min_id;          /* smallest character id (1-based, global)       */
    int n_chars;
    int64_t first;           /* npz: images.npy row of its first character;
                              * png: index of its first character in chars[] */
} og_alpha;

typedef struct og_rec {      /* one PNG member */
    int archive;
    uint64_t index;          /* member index in its archive                  */
    const char *name;        /* member name (owned by the archive)           */
    const char *alpha;       /* alphabet folder name, alpha_len bytes of name */
    int alpha_len;
    int64_t id;              /* character id, IIII of IIII_DD.png            */
    int drawing;             /* DD                                           */
} og_rec;

typedef struct og_char {     /* png: a character's drawings recs[begin, end) */
    int64_t begin, end;
} og_char;

typedef struct og_catalog {
    int n_alpha;
    og_alpha *alpha;         /* [n_alpha] */
    /* format B */
    int n_archives;
    zip_t *za[N_SETS];
    char *zip_path[N_SETS];
    int64_t n_recs, n_chars;
    og_rec *recs;            /* [n_recs]  */
    og_char *chars;          /* [n_chars] */
    /* format A */
    int npz_present[N_SETS];
    char *npz_path[N_SETS];
    int64_t npz_rows[N_SETS];    /* characters in the set's images.npy */
    uint64_t npz_index[N_SETS];  /* member index of images.npy */
    size_t npz_data_offset[N_SETS];
} og_catalog;

static void catalog_free(og_catalog *c)
{
    for (int a = 0; a < c->n_alpha; a++) free(c->alpha[a].name);
    free(c->alpha);
    for (int i = 0; i < N_SETS; i++) {
        if (c->za[i]) zip_discard(c->za[i]);
        free(c->zip_path[i]);
        free(c->npz_path[i]);
    }
    free(c->recs);
    free(c->chars);
    memset(c, 0, sizeof *c);
}

static char *dup_str(const char *s, size_t n, tnmtl_error *err)
{
    char *p = tnmtl_malloc(n + 1, "string", err);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *join_path(const char *dir, const char *file, tnmtl_error *err)
{
    size_t a = strlen(dir), b = strlen(file);
    char *p = tnmtl_malloc(a + b + 2, "path", err);
    if (p) snprintf(p, a + b + 2, "%s%s%s", dir, a && dir[a - 1] == '/' ? "" : "/", file);
    return p;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* ------------------------------------------------------------------------ */
/* Format A: alphabet_ranges.tsv                                             */

/* Parses a strict positive decimal integer of up to 9 digits. */
static int parse_id(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 9) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Reads the ranges file into c->alpha (all sets, file order). */
static tnmtl_status read_ranges(const char *path, og_catalog *c, tnmtl_error *err)
{
    unsigned char *text;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, OG_MAX_TSV_BYTES, &text, &len, err);
    if (st) return st;
    if (memchr(text, '\0', len)) {
        free(text);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: binary file (NUL byte), expected tab-separated text", path);
    }
    int cap = 0;
    char *line = (char *)text;
    for (int lineno = 1; line && *line; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = '\0';
        char *next = nl ? nl + 1 : NULL;
        if (ll == 0 || line[0] == '#') {
            line = next;
            continue;
        }
        char *f[6];
        size_t fl[6];
        int nf = 0;
        for (char *p = line;;) {
            char *tab = strchr(p, '\t');
            if (nf < 6) {
                f[nf] = p;
                fl[nf] = tab ? (size_t)(tab - p) : strlen(p);
            }
            nf++;
            if (!tab) break;
            p = tab + 1;
        }
        if (nf != 5) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT,
                            "%s line %d: %d tab-separated fields, expected 5 (set, alphabet, first_char_id, "
                            "last_char_id, n_chars)", path, lineno, nf);
            break;
        }
        int set = fl[0] == 10 && !strncmp(f[0], "background", 10) ? SET_BG
                : fl[0] == 10 && !strncmp(f[0], "evaluation", 10) ? SET_EV : -1;
        int64_t first, last, n;
        if (set < 0) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s line %d: set '%.*s' is neither background nor evaluation",
                            path, lineno, (int)(fl[0] > 40 ? 40 : fl[0]), f[0]);
            break;
        }
        if (fl[1] == 0 || fl[1] > OG_MAX_NAME || memchr(f[1], '/', fl[1]) || memchr(f[1], ',', fl[1])) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT,
                            "%s line %d: alphabet name is empty, longer than %d bytes, or holds '/' or ','", path,
                            lineno, OG_MAX_NAME);
            break;
        }
        if (!parse_id(f[2], fl[2], &first) || !parse_id(f[3], fl[3], &last) || !parse_id(f[4], fl[4], &n) ||
            first < 1 || n < 1 || last - first + 1 != n) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT,
                            "%s line %d (%.*s): ids '%.*s'..'%.*s' and count '%.*s' are not positive integers "
                            "with last - first + 1 = n_chars", path, lineno, (int)fl[1], f[1], (int)fl[2], f[2],
                            (int)fl[3], f[3], (int)fl[4], f[4]);
            break;
        }
        for (int a = 0; a < c->n_alpha && !st; a++)
            if (strlen(c->alpha[a].name) == fl[1] && !strncmp(c->alpha[a].name, f[1], fl[1]))
                st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s line %d: alphabet %s listed twice", path, lineno,
                                c->alpha[a].name);
        if (st) break;
        if (c->n_alpha == cap) {
            int ncap = cap ? 2 * cap : 64;
            og_alpha *p = ncap <= 100000 ? realloc(c->alpha, (size_t)ncap * sizeof *p) : NULL;
            if (!p) {
                st = tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: too many alphabets", path);
                break;
            }
            c->alpha = p;
            cap = ncap;
        }
        og_alpha *al = &c->alpha[c->n_alpha];
        memset(al, 0, sizeof *al);
        if (!(al->name = dup_str(f[1], fl[1], err))) {
            st = TNMTL_ERR_NOMEM;
            break;
        }
        c->n_alpha++;
        al->set = set;
        al->min_id = first;
        al->n_chars = (int)n;
        line = next;
    }
    free(text);
    if (!st && c->n_alpha == 0) st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no alphabets listed", path);
    return st;
}

static int cmp_alpha(const void *pa, const void *pb)
{
    const og_alpha *a = pa, *b = pb;
    if (a->min_id != b->min_id) return a->min_id < b->min_id ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Keeps the alphabets of the loaded sets, sorted by id, checks that each
 * set's ids are contiguous, and sets first = npz row and npz_rows. */
static tnmtl_status ranges_to_rows(const char *tsv, og_catalog *c, tnmtl_error *err)
{
    int keep = 0;
    for (int a = 0; a < c->n_alpha; a++) {
        if (c->npz_present[c->alpha[a].set])
            c->alpha[keep++] = c->alpha[a];
        else
            free(c->alpha[a].name);
    }
    c->n_alpha = keep;
    qsort(c->alpha, (size_t)c->n_alpha, sizeof *c->alpha, cmp_alpha);
    for (int s = 0; s < N_SETS; s++) {
        if (!c->npz_present[s]) continue;
        const og_alpha *prev = NULL;
        int64_t set_min = 0;
        for (int a = 0; a < c->n_alpha; a++) {
            og_alpha *al = &c->alpha[a];
            if (al->set != s) continue;
            if (!prev) {
                set_min = al->min_id;
            } else if (al->min_id != prev->min_id + prev->n_chars) {
                int64_t end = prev->min_id + prev->n_chars - 1;
                return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                                  "%s: %s alphabets %s (ids %lld..%lld) and %s (ids %lld..%lld) %s", tsv,
                                  set_name[s], prev->name, (long long)prev->min_id, (long long)end, al->name,
                                  (long long)al->min_id, (long long)(al->min_id + al->n_chars - 1),
                                  al->min_id <= end ? "overlap" : "leave a gap of unlisted ids");
            }
            al->first = al->min_id - set_min;
            prev = al;
        }
        if (!prev)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no %s alphabets listed, but %s is there", tsv,
                              set_name[s], c->npz_path[s]);
        c->npz_rows[s] = prev->first + prev->n_chars;
    }
    return TNMTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Format A: the npz archives                                                */

/* Checks labels.npy (if present): shape (rows, D), integer, label = row. */
static tnmtl_status check_labels(og_catalog *c, int s, int64_t drawings, tnmtl_error *err)
{
    int64_t idx = tnmtl_zip_find(c->za[s], "labels.npy");
    if (idx < 0) return TNMTL_OK;
    const char *path = c->npz_path[s];
    unsigned char *buf = NULL;
    size_t cap = 0, len;
    uint64_t max = (uint64_t)c->npz_rows[s] * (uint64_t)drawings * 8 + OG_MAX_NPY_HEADER;
    tnmtl_npy_header h;
    tnmtl_status st = tnmtl_zip_read_member(c->za[s], (uint64_t)idx, path, max, &buf, &cap, &len, err);
    if (!st && (st = tnmtl_npy_parse(buf, len, 0, &h, err)) != TNMTL_OK)
        tnmtl_error_prefix(err, "%s: labels.npy", path);
    if (!st && (h.ndim != 2 || h.shape[0] != c->npz_rows[s] || h.shape[1] != drawings ||
                (h.dtype != TNMTL_DTYPE_I64 && h.dtype != TNMTL_DTYPE_I32))) {
        char shape[128] = "";
        for (int i = 0, o = 0; i < h.ndim && o < 100; i++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", i ? ", " : "", (long long)h.shape[i]);
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: labels.npy is %s (%s), expected <i8 or <i4 (%lld, %lld)",
                        path, tnmtl_dtype_name(h.dtype), shape, (long long)c->npz_rows[s], (long long)drawings);
    }
    for (int64_t i = 0; !st && i < h.count; i++) {
        int64_t v;
        if (h.dtype == TNMTL_DTYPE_I64) {
            memcpy(&v, buf + h.data_offset + 8 * (size_t)i, 8);
        } else {
            int32_t v32;
            memcpy(&v32, buf + h.data_offset + 4 * (size_t)i, 4);
            v = v32;
        }
        if (v != i / drawings)
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT,
                            "%s: labels.npy[%lld][%lld] is %lld, expected the row %lld (rows must be the "
                            "characters in id order)", path, (long long)(i / drawings),
                            (long long)(i % drawings), (long long)v, (long long)(i / drawings));
    }
    free(buf);
    return st;
}

/* Opens the set's npz, validates images.npy's header against the ranges. */
static tnmtl_status open_npz(og_catalog *c, int s, const char *tsv, tnmtl_error *err)
{
    const char *path = c->npz_path[s];
    tnmtl_status st = tnmtl_zip_open(path, &c->za[s], err);
    if (st) return st;
    int64_t idx = tnmtl_zip_find(c->za[s], "images.npy");
    if (idx < 0) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no member images.npy", path);
    c->npz_index[s] = (uint64_t)idx;

    tnmtl_zip_member m;
    st = tnmtl_zip_member_open(c->za[s], (uint64_t)idx, path, UINT64_MAX, &m, err);
    if (st) return st;
    size_t got = m.size < OG_MAX_NPY_HEADER ? (size_t)m.size : OG_MAX_NPY_HEADER;
    unsigned char *head = tnmtl_malloc(got, "npy header", err);
    st = head ? tnmtl_zip_member_read(&m, head, got, err) : TNMTL_ERR_NOMEM;
    uint64_t member_size = m.size;
    tnmtl_zip_member_close(&m);
    tnmtl_npy_header h;
    if (st) {
        free(head);
        return st;
    }
    st = tnmtl_npy_parse(head, got, 1, &h, err);
    free(head);
    if (st) {
        tnmtl_error_prefix(err, "%s: images.npy", path);
        return st;
    }
    char shape[160] = "";
    for (int i = 0, o = 0; i < h.ndim && o < 120; i++)
        o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", i ? ", " : "", (long long)h.shape[i]);
    if (h.dtype != TNMTL_DTYPE_BOOL && h.dtype != TNMTL_DTYPE_U8)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: images.npy has dtype %s, expected |b1 (or |u1)", path,
                          tnmtl_dtype_name(h.dtype));
    if (h.ndim != 4 || h.shape[1] != OG_DRAWINGS || h.shape[2] != OG_N || h.shape[3] != OG_N)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: images.npy has shape (%s), expected (characters, %d, %d, %d)",
                          path, shape, OG_DRAWINGS, OG_N, OG_N);
    if (h.shape[0] != c->npz_rows[s])
        return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                          "%s lists %lld %s characters but %s: images.npy holds %lld (shape (%s)): the ranges "
                          "file does not match the images", tsv, (long long)c->npz_rows[s], set_name[s], path,
                          (long long)h.shape[0], shape);
    if ((uint64_t)h.data_offset + h.data_bytes != member_size)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                          "%s: images.npy is %llu bytes but its header declares %zu + %zu (truncated or padded)",
                          path, (unsigned long long)member_size, h.data_offset, h.data_bytes);
    c->npz_data_offset[s] = h.data_offset;
    return check_labels(c, s, OG_DRAWINGS, err);
}

/* ------------------------------------------------------------------------ */
/* Format B: zips of PNGs                                                    */

/* Parses "IIII_DD.png" (case-insensitive extension). */
static int parse_png_name(const char *base, int64_t *id, int *drawing)
{
    const char *us = strchr(base, '_'), *dot = strrchr(base, '.');
    int64_t d;
    if (!us || !dot || dot < us || strcasecmp(dot, ".png") != 0) return 0;
    if (!parse_id(base, (size_t)(us - base), id) || !parse_id(us + 1, (size_t)(dot - us - 1), &d)) return 0;
    if (*id < 1 || d < 1 || d > 1000000) return 0;
    *drawing = (int)d;
    return 1;
}

/* Adds the PNG members of one archive to c->recs. */
static tnmtl_status scan_zip(og_catalog *c, int ar, int64_t *rec_cap, tnmtl_error *err)
{
    zip_t *za = c->za[ar];
    const char *path = c->zip_path[ar];
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        if (!name) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member #%lld has no name", path, (long long)i);
        size_t len = strlen(name);
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (len == 0 || name[len - 1] == '/' || !ends_with(name, ".png") || base[0] == '.' ||
            strstr(name, "__MACOSX/"))
            continue;   /* folders, other files, macOS resource forks */
        int64_t id;
        int drawing;
        if (!parse_png_name(base, &id, &drawing))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s: file name is not IIII_DD.png "
                              "(character id, drawing)", path, name);
        /* name = [top/]alphabet/character/base: the two folders above the file */
        const char *ch_end = base - 1, *ch = ch_end, *alpha = NULL, *alpha_end = NULL;
        if (base > name) {
            while (ch > name && ch[-1] != '/') ch--;
            if (ch > name) {
                alpha_end = ch - 1;
                alpha = alpha_end;
                while (alpha > name && alpha[-1] != '/') alpha--;
            }
        }
        if (!alpha || alpha == alpha_end || ch == ch_end)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s is not inside alphabet/character/ folders",
                              path, name);
        if (alpha_end - alpha > OG_MAX_NAME || memchr(alpha, ',', (size_t)(alpha_end - alpha)))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s: alphabet folder name longer than %d bytes "
                              "or holding ','", path, name, OG_MAX_NAME);
        if (c->n_recs == *rec_cap) {
            int64_t ncap = *rec_cap ? 2 * *rec_cap : 4096;
            if (ncap > OG_MAX_PNGS)
                return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: more than %lld PNG members (Omniglot has 32,460)",
                                  path, (long long)*rec_cap);
            og_rec *p = realloc(c->recs, (size_t)ncap * sizeof *p);
            if (!p) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory listing the PNG members", path);
            c->recs = p;
            *rec_cap = ncap;
        }
        og_rec *r = &c->recs[c->n_recs++];
        r->archive = ar;
        r->index = (uint64_t)i;
        r->name = name;
        r->alpha = alpha;
        r->alpha_len = (int)(alpha_end - alpha);
        r->id = id;
        r->drawing = drawing;
    }
    return TNMTL_OK;
}

static int cmp_name(const char *a, int na, const char *b, int nb)
{
    int k = memcmp(a, b, (size_t)(na < nb ? na : nb));
    return k ? k : (na > nb) - (na < nb);
}

static int cmp_rec(const void *pa, const void *pb)
{
    const og_rec *a = pa, *b = pb;
    int k = cmp_name(a->alpha, a->alpha_len, b->alpha, b->alpha_len);
    if (k) return k;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    if (a->drawing != b->drawing) return a->drawing < b->drawing ? -1 : 1;
    return a->archive != b->archive ? a->archive - b->archive : (a->index > b->index) - (a->index < b->index);
}

/* Groups the sorted records into characters and alphabets. */
static tnmtl_status build_png_catalog(og_catalog *c, tnmtl_error *err)
{
    if (c->n_recs == 0) {
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s%s%s: no alphabet/character/IIII_DD.png members found",
                          c->zip_path[0] ? c->zip_path[0] : "", c->zip_path[0] && c->zip_path[1] ? ", " : "",
                          c->zip_path[1] ? c->zip_path[1] : "");
    }
    qsort(c->recs, (size_t)c->n_recs, sizeof *c->recs, cmp_rec);
    c->chars = tnmtl_calloc((size_t)c->n_recs, sizeof *c->chars, "character table", err);
    if (!c->chars) return TNMTL_ERR_NOMEM;
    int alpha_cap = 0;
    for (int64_t i = 0; i < c->n_recs; i++) {
        const og_rec *r = &c->recs[i], *p = i ? &c->recs[i - 1] : NULL;
        int new_alpha = !p || cmp_name(r->alpha, r->alpha_len, p->alpha, p->alpha_len) != 0;
        if (!new_alpha && r->archive != p->archive)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "alphabet %.*s is in both %s and %s", r->alpha_len, r->alpha,
                              c->zip_path[p->archive], c->zip_path[r->archive]);
        if (!new_alpha && r->id == p->id && r->drawing == p->drawing)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: members %s and %s are both drawing %d of character %lld",
                              c->zip_path[r->archive], p->name, r->name, r->drawing, (long long)r->id);
        if (new_alpha) {
            if (c->n_alpha == alpha_cap) {
                int ncap = alpha_cap ? 2 * alpha_cap : 64;
                og_alpha *q = realloc(c->alpha, (size_t)ncap * sizeof *q);
                if (!q) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory for the alphabet table");
                c->alpha = q;
                alpha_cap = ncap;
            }
            og_alpha *al = &c->alpha[c->n_alpha];
            memset(al, 0, sizeof *al);
            if (!(al->name = dup_str(r->alpha, (size_t)r->alpha_len, err))) return TNMTL_ERR_NOMEM;
            c->n_alpha++;
            al->set = r->archive;
            al->min_id = r->id;
            al->first = c->n_chars;
        }
        if (new_alpha || r->id != p->id) {
            c->chars[c->n_chars].begin = i;
            c->alpha[c->n_alpha - 1].n_chars++;
            c->n_chars++;
        }
        c->chars[c->n_chars - 1].end = i + 1;
    }
    qsort(c->alpha, (size_t)c->n_alpha, sizeof *c->alpha, cmp_alpha);
    return TNMTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Selection and decoding                                                    */

/* sel[n_sel]: catalogue indices of the chosen alphabets, in task order. */
static tnmtl_status select_alphabets(const og_catalog *c, const tnmtl_omniglot_options *opt, const char *path,
                                     int **sel, int *n_sel, tnmtl_error *err)
{
    *sel = tnmtl_calloc((size_t)c->n_alpha, sizeof(int), "alphabet selection", err);
    if (!*sel) return TNMTL_ERR_NOMEM;
    *n_sel = 0;
    if (opt->alphabets && *opt->alphabets) {
        for (const char *p = opt->alphabets;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            while (len && (*p == ' ' || *p == '\t')) p++, len--;
            while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
            if (len == 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "alphabets: empty name in '%s'", opt->alphabets);
            int found = -1;
            for (int a = 0; a < c->n_alpha && found < 0; a++)
                if (strlen(c->alpha[a].name) == len && !strncmp(c->alpha[a].name, p, len)) found = a;
            if (found < 0)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "alphabets: no alphabet '%.*s' in %s (%d alphabets: %s, %s, ...)",
                                  (int)(len > 100 ? 100 : len), p, path, c->n_alpha, c->alpha[0].name,
                                  c->n_alpha > 1 ? c->alpha[1].name : "");
            for (int k = 0; k < *n_sel; k++)
                if ((*sel)[k] == found)
                    return tnmtl_fail(err, TNMTL_ERR_INVALID, "alphabets: '%s' is listed twice", c->alpha[found].name);
            if (*n_sel >= c->n_alpha)
                return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "alphabets: selection overflow");
            (*sel)[(*n_sel)++] = found;
            if (!comma) break;
            p = comma + 1;
        }
        return TNMTL_OK;
    }
    int k = opt->first_alphabets ? opt->first_alphabets : c->n_alpha;
    if (k > c->n_alpha)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "first %d alphabets asked for, but %s holds %d", k, path,
                          c->n_alpha);
    for (int a = 0; a < k; a++) (*sel)[a] = a;
    *n_sel = k;
    return TNMTL_OK;
}

static int64_t alpha_examples(const og_catalog *c, const og_alpha *al)
{
    if (!c->recs) return (int64_t)al->n_chars * OG_DRAWINGS;
    const og_char *ch = c->chars + al->first;
    return ch[al->n_chars - 1].end - ch[0].begin;
}

/* Allocates out for the selected alphabets and fills everything but pixels. */
static tnmtl_status make_dataset(const og_catalog *c, const int *sel, int n_sel, int size, size_t max_bytes,
                                 const char *path, const char *format, tnmtl_dataset *out, tnmtl_error *err)
{
    int64_t n = 0;
    for (int t = 0; t < n_sel; t++) n += alpha_examples(c, &c->alpha[sel[t]]);
    tnmtl_status st = tnmtl_image_memory_check(path, n, size, size, 1, max_bytes,
                                               "choose fewer alphabets or a smaller size", err);
    if (st) return st;
    st = tnmtl_dataset_init(out, n_sel, n, size, size, 1, TNMTL_TARGET_CLASS, 1, err);
    if (st) return st;
    out->pixel_scale = 1.0f / 255.0f;
    out->pixel_offset = 0.0f;
    snprintf(out->source, sizeof out->source, "omniglot:%.200s (%s, %dx%d)", path, format, size, size);
    int64_t e = 0;
    for (int t = 0; t < n_sel; t++) {
        const og_alpha *al = &c->alpha[sel[t]];
        out->task_begin[t] = e;
        out->n_classes[t] = al->n_chars;
        if ((st = tnmtl_dataset_set_task_name(out, t, al->name, err)) != TNMTL_OK) return st;
        for (int k = 0; k < al->n_chars; k++) {
            int64_t d = c->recs ? c->chars[al->first + k].end - c->chars[al->first + k].begin : OG_DRAWINGS;
            for (int64_t i = 0; i < d; i++) out->label[e++] = k;
        }
    }
    out->task_begin[n_sel] = e;
    return TNMTL_OK;
}

/* Streams each npz holding tasks [tb, te) (of the n_sel selected alphabets)
 * and converts their rows in place; a partial load stops reading a member
 * after its last needed row. */
static tnmtl_status fill_npz(og_catalog *c, const int *sel, int tb, int te, tnmtl_resizer *box, uint8_t *scratch,
                             tnmtl_dataset *ds, tnmtl_error *err)
{
    const int64_t ex = (int64_t)ds->in_h * ds->in_w, first = ds->task_begin[tb];
    const int partial = tb > 0 || te < ds->n_tasks;
    uint8_t *row = tnmtl_malloc((size_t)OG_DRAWINGS * OG_PIXELS, "images.npy row", err);
    if (!row) return TNMTL_ERR_NOMEM;
    tnmtl_status st = TNMTL_OK;
    for (int s = 0; s < N_SETS && !st; s++) {
        if (!c->za[s]) continue;
        int64_t *dest = NULL;   /* [npz_rows]: example index of the row's first drawing, or -1 */
        int used = 0;
        for (int t = tb; t < te; t++) used |= c->alpha[sel[t]].set == s;
        if (!used) continue;
        dest = tnmtl_malloc((size_t)c->npz_rows[s] * sizeof *dest, "row map", err);
        if (!dest) {
            st = TNMTL_ERR_NOMEM;
            break;
        }
        int64_t rows = 0;       /* the rows to read: up to the last needed one */
        for (int64_t r = 0; r < c->npz_rows[s]; r++) dest[r] = -1;
        for (int t = tb; t < te; t++) {
            const og_alpha *al = &c->alpha[sel[t]];
            if (al->set != s) continue;
            for (int k = 0; k < al->n_chars; k++)
                dest[al->first + k] = ds->task_begin[t] - first + (int64_t)k * OG_DRAWINGS;
            if (al->first + al->n_chars > rows) rows = al->first + al->n_chars;
        }
        if (!partial) rows = c->npz_rows[s];
        tnmtl_zip_member m;
        st = tnmtl_zip_member_open(c->za[s], c->npz_index[s], c->npz_path[s], UINT64_MAX, &m, err);
        if (!st) st = tnmtl_zip_member_skip(&m, c->npz_data_offset[s], err);
        for (int64_t r = 0; r < rows && !st; r++) {
            st = tnmtl_zip_member_read(&m, row, (size_t)OG_DRAWINGS * OG_PIXELS, err);
            if (st || dest[r] < 0) continue;
            for (int d = 0; d < OG_DRAWINGS; d++) {
                const uint8_t *src = row + (size_t)d * OG_PIXELS;
                uint8_t *out = ds->pixels + (dest[r] + d) * ex;
                uint8_t *img = box->out_h == OG_N ? out : scratch;
                for (int i = 0; i < OG_PIXELS; i++) img[i] = src[i] ? 0 : 255;   /* 0 = ink -> 255 */
                if (img == scratch) tnmtl_resizer_apply(box, scratch, out);
            }
        }
        if (!st && !partial) st = tnmtl_zip_member_finish(&m, err);   /* reads to the end: CRC check */
        tnmtl_zip_member_close(&m);
        free(dest);
    }
    free(row);
    return st;
}

/* Decodes one PNG held in buf[len] into img[105][105] (grey, ink = 255). */
static tnmtl_status decode_png(const unsigned char *buf, size_t len, const char *zip_path, const char *member,
                               uint8_t *img, tnmtl_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s: member %s", zip_path, member);
    tnmtl_image_info info;
    tnmtl_status st = tnmtl_image_probe(buf, len, name, &info, err);
    if (!st && info.format != TNMTL_IMAGE_PNG)
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a valid PNG (a JPEG)", name);
    if (!st && (info.width != OG_N || info.height != OG_N))
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s is %dx%d pixels, expected %dx%d", zip_path, member,
                        info.width, info.height, OG_N, OG_N);
    if (!st) st = tnmtl_image_decode(buf, len, name, OG_N, OG_N, 1, img, err);   /* alpha over white */
    for (int i = 0; !st && i < OG_PIXELS; i++) img[i] = (uint8_t)(255 - img[i]);
    return st;
}

/* Decodes the PNGs of tasks [tb, te) only. */
static tnmtl_status fill_png(og_catalog *c, const int *sel, int tb, int te, tnmtl_resizer *box, uint8_t *scratch,
                             tnmtl_dataset *ds, tnmtl_error *err)
{
    const int64_t ex = (int64_t)ds->in_h * ds->in_w;
    unsigned char *buf = NULL;
    size_t cap = 0, len;
    tnmtl_status st = TNMTL_OK;
    for (int t = tb; t < te && !st; t++) {
        const og_alpha *al = &c->alpha[sel[t]];
        const og_char *ch = c->chars + al->first;
        int64_t e = ds->task_begin[t] - ds->task_begin[tb];
        for (int64_t i = ch[0].begin; i < ch[al->n_chars - 1].end && !st; i++, e++) {
            const og_rec *r = &c->recs[i];
            const char *zp = c->zip_path[r->archive];
            st = tnmtl_zip_read_member(c->za[r->archive], r->index, zp, OG_MAX_PNG_BYTES, &buf, &cap, &len, err);
            if (st) break;
            uint8_t *out = ds->pixels + e * ex;
            uint8_t *img = box->out_h == OG_N ? out : scratch;
            st = decode_png(buf, len, zp, r->name, img, err);
            if (!st && img == scratch) tnmtl_resizer_apply(box, scratch, out);
        }
    }
    free(buf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */

/* Finds the files to read: fills c->npz_path/npz_present (format A, *tsv
 * set) or c->zip_path (format B). */
static tnmtl_status locate(const char *path, tnmtl_omniglot_sets sets, og_catalog *c, char **tsv,
                           tnmtl_error *err)
{
    struct stat st;
    *tsv = NULL;
    if (stat(path, &st) != 0) return tnmtl_fail(err, TNMTL_ERR_IO, "%s: no such file or folder", path);
    int want[N_SETS] = {sets != TNMTL_OMNIGLOT_SETS_EVALUATION, sets != TNMTL_OMNIGLOT_SETS_BACKGROUND};
    if (S_ISREG(st.st_mode)) {
        if (!ends_with(path, ".npz")) {   /* a lone zip of PNGs */
            c->zip_path[0] = dup_str(path, strlen(path), err);
            c->n_archives = 1;
            return c->zip_path[0] ? TNMTL_OK : TNMTL_ERR_NOMEM;
        }
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        int s = strstr(base, "background") ? SET_BG : strstr(base, "evaluation") ? SET_EV : -1;
        if (s < 0)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: cannot tell the set of this .npz (its name holds "
                              "neither 'background' nor 'evaluation')", path);
        size_t dl = (size_t)(base - path);
        char *dir = dup_str(path, dl ? dl : 1, err);
        if (!dir) return TNMTL_ERR_NOMEM;
        if (!dl) dir[0] = '.';
        *tsv = join_path(dir, "alphabet_ranges.tsv", err);
        free(dir);
        c->npz_path[s] = dup_str(path, strlen(path), err);
        c->npz_present[s] = 1;
        return *tsv && c->npz_path[s] ? TNMTL_OK : TNMTL_ERR_NOMEM;
    }
    if (!S_ISDIR(st.st_mode)) return tnmtl_fail(err, TNMTL_ERR_IO, "%s: neither a file nor a folder", path);
    int any_npz = 0, any_zip = 0;
    for (int s = 0; s < N_SETS; s++) {
        if (!want[s]) continue;
        if (!(c->npz_path[s] = join_path(path, npz_file[s], err))) return TNMTL_ERR_NOMEM;
        if (!(c->zip_path[s] = join_path(path, zip_file[s], err))) return TNMTL_ERR_NOMEM;
        any_npz |= c->npz_present[s] = is_file(c->npz_path[s]);
        any_zip |= is_file(c->zip_path[s]);
    }
    const char *what = sets == TNMTL_OMNIGLOT_SETS_BACKGROUND ? "images_background"
                     : sets == TNMTL_OMNIGLOT_SETS_EVALUATION ? "images_evaluation"
                     : "images_background or images_evaluation";
    if (any_npz) {
        for (int s = 0; s < N_SETS; s++) {
            free(c->zip_path[s]);
            c->zip_path[s] = NULL;
            if (!c->npz_present[s]) {
                free(c->npz_path[s]);
                c->npz_path[s] = NULL;
            }
        }
        if (!(*tsv = join_path(path, "alphabet_ranges.tsv", err))) return TNMTL_ERR_NOMEM;
        if (!is_file(*tsv))
            return tnmtl_fail(err, TNMTL_ERR_IO, "%s: missing (needed with the .npz files of %s)", *tsv, path);
        return TNMTL_OK;
    }
    for (int s = 0; s < N_SETS; s++) {
        free(c->npz_path[s]);
        c->npz_path[s] = NULL;
        if (c->zip_path[s] && !is_file(c->zip_path[s])) {
            free(c->zip_path[s]);
            c->zip_path[s] = NULL;
        }
        c->n_archives += c->zip_path[s] != NULL;
    }
    if (!any_zip)
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: no Omniglot data: expected %s .npz (with alphabet_ranges.tsv) "
                          "or .zip", path, what);
    return TNMTL_OK;
}

tnmtl_status tnmtl_omniglot_load(const char *path, const tnmtl_omniglot_options *opt_in, tnmtl_dataset *out,
                                 tnmtl_error *err)
{
    tnmtl_omniglot_options opt = {0};
    if (opt_in) opt = *opt_in;
    memset(out, 0, sizeof *out);
    if (!path || !*path) return tnmtl_fail(err, TNMTL_ERR_INVALID, "omniglot: no path given");
    int size = opt.size ? opt.size : OG_N;
    if (size < 1 || size > OG_N)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "omniglot: size %d is out of range 1..%d", opt.size, OG_N);
    if (opt.first_alphabets < 0)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "omniglot: first_alphabets %d is negative", opt.first_alphabets);
    if (opt.first_alphabets && opt.alphabets && *opt.alphabets)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "omniglot: give either a list of alphabets or a count, not both");
    if (opt.sets != TNMTL_OMNIGLOT_SETS_ALL && opt.sets != TNMTL_OMNIGLOT_SETS_BACKGROUND &&
        opt.sets != TNMTL_OMNIGLOT_SETS_EVALUATION)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "omniglot: unknown sets value %d", (int)opt.sets);
    size_t max_bytes = opt.max_bytes ? opt.max_bytes : OG_DEFAULT_MAX_BYTES;

    og_catalog c;
    memset(&c, 0, sizeof c);
    tnmtl_resizer box;
    memset(&box, 0, sizeof box);
    uint8_t *scratch = NULL;
    int *sel = NULL, n_sel = 0;
    char *tsv = NULL;
    tnmtl_status st = locate(path, opt.sets, &c, &tsv, err);
    int npz = tsv != NULL;
    if (!st && npz) {
        st = read_ranges(tsv, &c, err);
        if (!st) st = ranges_to_rows(tsv, &c, err);
        for (int s = 0; s < N_SETS && !st; s++)
            if (c.npz_present[s]) st = open_npz(&c, s, tsv, err);
    } else if (!st) {
        int64_t rec_cap = 0;
        for (int s = 0; s < N_SETS && !st; s++) {
            if (!c.zip_path[s]) continue;
            st = tnmtl_zip_open(c.zip_path[s], &c.za[s], err);
            if (!st) st = scan_zip(&c, s, &rec_cap, err);
        }
        if (!st) st = build_png_catalog(&c, err);
    }
    if (!st) st = select_alphabets(&c, &opt, path, &sel, &n_sel, err);
    if (!st) st = make_dataset(&c, sel, n_sel, size, max_bytes, path, npz ? "npz" : "png", out, err);
    int tb = 0, te = 0;
    if (!st) st = tnmtl_dataset_select_inputs(out, &opt.inputs, &tb, &te, err);
    if (!st) st = tnmtl_resizer_init(&box, OG_N, OG_N, size, size, 1, err);
    if (!st && !(scratch = tnmtl_malloc(OG_PIXELS, "scratch image", err))) st = TNMTL_ERR_NOMEM;
    if (!st) st = npz ? fill_npz(&c, sel, tb, te, &box, scratch, out, err)
                      : fill_png(&c, sel, tb, te, &box, scratch, out, err);
    free(scratch);
    tnmtl_resizer_free(&box);
    free(sel);
    free(tsv);
    catalog_free(&c);
    if (st) tnmtl_dataset_free(out);
    return st;
}
