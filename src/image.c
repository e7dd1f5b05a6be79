/* image.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding into 8-bit grey
 * or RGB, and the exact area filter.  See image.h for the rules. */
#include "image.h"

#include <stdio.h>   /* before jpeglib.h, which needs FILE */

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------------------ */
/* Pixel conversions                                                         */

static inline uint8_t over_white(unsigned v, unsigned a)
{
    return (uint8_t)((v * a + 255u * (255u - a) + 127u) / 255u);
}

static inline uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

/* src[n][nc] (nc = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) -> dst[n][c]. */
static void convert_pixels(const uint8_t *src, int nc, size_t n, int c, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++, src += nc, dst += c) {
        unsigned r, g, b;
        if (nc <= 2) {
            r = g = b = nc == 2 ? over_white(src[0], src[1]) : src[0];
        } else {
            r = src[0], g = src[1], b = src[2];
            if (nc == 4) r = over_white(r, src[3]), g = over_white(g, src[3]), b = over_white(b, src[3]);
        }
        if (c == 1) {
            dst[0] = nc <= 2 ? (uint8_t)r : luma(r, g, b);
        } else {
            dst[0] = (uint8_t)r, dst[1] = (uint8_t)g, dst[2] = (uint8_t)b;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Probe                                                                     */

static tnmtl_status probe_jpeg(const unsigned char *buf, size_t len, const char *name, tnmtl_image_info *info,
                               tnmtl_error *err);

tnmtl_status tnmtl_image_probe(const unsigned char *buf, size_t len, const char *name, tnmtl_image_info *info,
                               tnmtl_error *err)
{
    memset(info, 0, sizeof *info);
    if (len == 0) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: empty file (0 bytes)", name);
    if (len >= 8 && !memcmp(buf, png_sig, 8)) {
        if (len < 33 || memcmp(buf + 12, "IHDR", 4) != 0)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a valid PNG (truncated or corrupt: no complete IHDR header)", name);
        uint32_t w = be32(buf + 16), h = be32(buf + 20);
        int depth = buf[24], type = buf[25];
        if (w == 0 || h == 0 || w > TNMTL_IMAGE_MAX_SIDE || h > TNMTL_IMAGE_MAX_SIDE)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: PNG of %ux%u pixels (sides must be 1..%d)", name,
                              (unsigned)w, (unsigned)h, TNMTL_IMAGE_MAX_SIDE);
        if ((type != 0 && type != 2 && type != 3 && type != 4 && type != 6) ||
            (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a valid PNG (corrupt: colour type %d, bit depth %d)", name, type,
                              depth);
        info->format = TNMTL_IMAGE_PNG;
        info->width = (int)w;
        info->height = (int)h;
        info->colour = type == 2 || type == 3 || type == 6;
        return TNMTL_OK;
    }
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return probe_jpeg(buf, len, name, info, err);
    return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a PNG or JPEG image (%zu bytes, starting 0x%02x 0x%02x 0x%02x)",
                      name, len, buf[0], len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0);
}

/* ------------------------------------------------------------------------ */
/* PNG                                                                       */

typedef struct png_state {   /* lives outside the frame that calls setjmp */
    const unsigned char *buf;
    size_t len, pos;
    char msg[200];
    png_structp png;
    png_infop info;
    uint8_t *raw;
    png_bytep *rows;
    int nc;                  /* channels of raw */
} png_state;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_state *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_state *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "file ends early (truncated)");
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
}

/* Returns 0 on success, 1 after a libpng error (s->msg) and 2 on a bad
 * size or no memory (s->msg too). */
static int png_run(png_state *s, int width, int height)
{
    if (setjmp(png_jmpbuf(s->png))) return 1;
    png_set_read_fn(s->png, s, png_read_mem);
    png_set_user_limits(s->png, TNMTL_IMAGE_MAX_SIDE, TNMTL_IMAGE_MAX_SIDE);
    png_read_info(s->png, s->info);
    if ((int)png_get_image_width(s->png, s->info) != width || (int)png_get_image_height(s->png, s->info) != height) {
        snprintf(s->msg, sizeof s->msg, "size changed between reads");
        return 2;
    }
    png_set_expand(s->png);   /* palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha */
    if (png_get_bit_depth(s->png, s->info) == 16) png_set_scale_16(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    const int nc = png_get_channels(s->png, s->info);
    const size_t rowbytes = png_get_rowbytes(s->png, s->info);
    if (nc < 1 || nc > 4 || rowbytes != (size_t)width * (size_t)nc) {
        snprintf(s->msg, sizeof s->msg, "unexpected layout after conversion (%d channels)", nc);
        return 2;
    }
    s->raw = malloc(rowbytes * (size_t)height);
    s->rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!s->raw || !s->rows) {
        snprintf(s->msg, sizeof s->msg, "out of memory for %dx%d pixels", width, height);
        return 2;
    }
    for (int y = 0; y < height; y++) s->rows[y] = s->raw + rowbytes * (size_t)y;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL);
    s->nc = nc;
    return 0;
}

static tnmtl_status png_decode(const unsigned char *buf, size_t len, const char *name, int width, int height,
                               int channels, uint8_t *out, tnmtl_error *err)
{
    png_state s;
    memset(&s, 0, sizeof s);
    s.buf = buf;
    s.len = len;
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    int rc = s.png && s.info ? png_run(&s, width, height) : 2;
    if (rc == 0) convert_pixels(s.raw, s.nc, (size_t)width * (size_t)height, channels, out);
    if (!s.png) snprintf(s.msg, sizeof s.msg, "out of memory");
    png_destroy_read_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL, NULL);
    free(s.raw);
    free(s.rows);
    if (rc == 0) return TNMTL_OK;
    return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a valid PNG (%s): %s", name,
                      rc == 1 ? "truncated or corrupt" : "cannot decode", s.msg);
}

/* ------------------------------------------------------------------------ */
/* JPEG                                                                      */

typedef struct jpeg_state {
    struct jpeg_error_mgr mgr;   /* first: libjpeg casts back to it */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    struct jpeg_decompress_struct cinfo;
    uint8_t *row;
} jpeg_state;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_state *s = (jpeg_state *)c->err;
    (*c->err->format_message)(c, s->msg);
    longjmp(s->jb, 1);
}

/* Warnings (level -1: corrupt or truncated data) are errors here. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level < 0) jpeg_on_error(c);
}

/* mode 0: header into info; 1: decode into out.  0 ok, 1 libjpeg error. */
static int jpeg_run(jpeg_state *s, const unsigned char *buf, size_t len, int mode, tnmtl_image_info *info,
                    int channels, uint8_t *out)
{
    if (setjmp(s->jb)) return 1;
    jpeg_create_decompress(&s->cinfo);
    jpeg_mem_src(&s->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&s->cinfo, TRUE);
    if (mode == 0) {
        info->width = (int)s->cinfo.image_width;
        info->height = (int)s->cinfo.image_height;
        info->colour = s->cinfo.num_components != 1;
        return 0;
    }
    s->cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&s->cinfo);
    if (s->cinfo.output_components != channels) {
        snprintf(s->msg, sizeof s->msg, "decoder gave %d channels", s->cinfo.output_components);
        return 1;
    }
    const size_t stride = (size_t)s->cinfo.output_width * (size_t)channels;
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
        JSAMPROW row = out + stride * s->cinfo.output_scanline;
        jpeg_read_scanlines(&s->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&s->cinfo);
    return 0;
}

static int jpeg_go(const unsigned char *buf, size_t len, int mode, tnmtl_image_info *info, int channels,
                   uint8_t *out, char *msg, size_t cap)
{
    jpeg_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, cap, "out of memory");
        return 1;
    }
    s->cinfo.err = jpeg_std_error(&s->mgr);
    s->mgr.error_exit = jpeg_on_error;
    s->mgr.emit_message = jpeg_on_message;
    int rc = jpeg_run(s, buf, len, mode, info, channels, out);
    jpeg_destroy_decompress(&s->cinfo);
    snprintf(msg, cap, "%s", s->msg);
    free(s);
    return rc;
}

static tnmtl_status probe_jpeg(const unsigned char *buf, size_t len, const char *name, tnmtl_image_info *info,
                               tnmtl_error *err)
{
    char msg[JMSG_LENGTH_MAX];
    if (jpeg_go(buf, len, 0, info, 0, NULL, msg, sizeof msg))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: truncated or corrupt JPEG: %s", name, msg);
    if (info->width < 1 || info->height < 1 || info->width > TNMTL_IMAGE_MAX_SIDE || info->height > TNMTL_IMAGE_MAX_SIDE)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: JPEG of %dx%d pixels (sides must be 1..%d)", name, info->width,
                          info->height, TNMTL_IMAGE_MAX_SIDE);
    info->format = TNMTL_IMAGE_JPEG;
    return TNMTL_OK;
}

tnmtl_status tnmtl_image_decode(const unsigned char *buf, size_t len, const char *name, int width, int height,
                                int channels, uint8_t *out, tnmtl_error *err)
{
    tnmtl_image_info info;
    tnmtl_status st = tnmtl_image_probe(buf, len, name, &info, err);
    if (st) return st;
    if (channels != 1 && channels != 3)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: %d channels asked for (1 or 3)", name, channels);
    if (info.width != width || info.height != height)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s is %dx%d pixels, expected %dx%d", name, info.width, info.height,
                          width, height);
    if (info.format == TNMTL_IMAGE_PNG) return png_decode(buf, len, name, width, height, channels, out, err);
    char msg[JMSG_LENGTH_MAX];
    if (jpeg_go(buf, len, 1, &info, channels, out, msg, sizeof msg))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: truncated or corrupt JPEG: %s", name, msg);
    return TNMTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Area filter                                                               */

/* 1-D box weights n -> s in units where a source pixel is s wide and an
 * output pixel n wide: output i covers source pixels lo[i] .. lo[i]+len[i]-1
 * with integer weights w[i*span + k] summing to n. */
static int box_table(int n, int s, int *span, int **lo, int **len, int **w, tnmtl_error *err)
{
    *span = n / s + 2;
    *lo = tnmtl_calloc((size_t)s, sizeof(int), "resize table", err);
    *len = tnmtl_calloc((size_t)s, sizeof(int), "resize table", err);
    *w = tnmtl_calloc((size_t)s * (size_t)*span, sizeof(int), "resize table", err);
    if (!*lo || !*len || !*w) return 0;
    for (int i = 0; i < s; i++) {
        int64_t a = (int64_t)i * n, e = (int64_t)(i + 1) * n;   /* [a, e) in source units of 1/s */
        int p0 = (int)(a / s), p1 = (int)((e - 1) / s);
        (*lo)[i] = p0;
        (*len)[i] = p1 - p0 + 1;
        for (int p = p0; p <= p1; p++) {
            int64_t l = (int64_t)p * s > a ? (int64_t)p * s : a;
            int64_t r = (int64_t)(p + 1) * s < e ? (int64_t)(p + 1) * s : e;
            (*w)[i * *span + (p - p0)] = (int)(r - l);
        }
    }
    return 1;
}

void tnmtl_resizer_free(tnmtl_resizer *r)
{
    free(r->lo_h), free(r->len_h), free(r->w_h);
    free(r->lo_w), free(r->len_w), free(r->w_w);
    free(r->tmp);
    memset(r, 0, sizeof *r);
}

tnmtl_status tnmtl_resizer_init(tnmtl_resizer *r, int in_h, int in_w, int out_h, int out_w, int c, tnmtl_error *err)
{
    memset(r, 0, sizeof *r);
    if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || in_h > 4096 || in_w > 4096 || out_h > 4096 ||
        out_w > 4096 || c < 1 || c > 4)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "resize: cannot map %dx%d to %dx%d (sides must be 1..4096)", in_h,
                          in_w, out_h, out_w);
    r->in_h = in_h, r->in_w = in_w, r->out_h = out_h, r->out_w = out_w, r->c = c;
    int ok = box_table(in_h, out_h, &r->span_h, &r->lo_h, &r->len_h, &r->w_h, err) &&
             box_table(in_w, out_w, &r->span_w, &r->lo_w, &r->len_w, &r->w_w, err);
    if (ok) r->tmp = tnmtl_calloc((size_t)in_h * (size_t)out_w * (size_t)c, sizeof(int32_t), "resize buffer", err);
    if (!ok || !r->tmp) {
        tnmtl_resizer_free(r);
        return TNMTL_ERR_NOMEM;
    }
    return TNMTL_OK;
}

/* src[in_h][in_w][c] -> dst[out_h][out_w][c]: rows first into tmp, then columns. */
void tnmtl_resizer_apply(tnmtl_resizer *r, const uint8_t *src, uint8_t *dst)
{
    const int c = r->c, ow = r->out_w, oh = r->out_h;
    if (r->in_h == oh && r->in_w == ow) {
        memcpy(dst, src, (size_t)oh * (size_t)ow * (size_t)c);
        return;
    }
    for (int p = 0; p < r->in_h; p++) {
        const uint8_t *row = src + (size_t)p * (size_t)r->in_w * (size_t)c;
        for (int j = 0; j < ow; j++) {
            const int *w = r->w_w + j * r->span_w;
            const uint8_t *x = row + (size_t)r->lo_w[j] * (size_t)c;
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = 0;
                for (int k = 0; k < r->len_w[j]; k++) acc += w[k] * x[k * c + ch];
                r->tmp[((size_t)p * ow + j) * c + ch] = acc;   /* <= 255 * in_w */
            }
        }
    }
    const int64_t denom = (int64_t)r->in_h * r->in_w;
    for (int i = 0; i < oh; i++) {
        const int *w = r->w_h + i * r->span_h;
        for (int j = 0; j < ow; j++)
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 0;
                for (int k = 0; k < r->len_h[i]; k++)
                    acc += (int64_t)w[k] * r->tmp[((size_t)(r->lo_h[i] + k) * ow + j) * c + ch];
                dst[((size_t)i * ow + j) * c + ch] = (uint8_t)((2 * acc + denom) / (2 * denom));   /* halves up */
            }
    }
}

tnmtl_status tnmtl_image_memory_check(const char *what, int64_t n, int h, int w, int c, size_t max_bytes,
                                      const char *hint, tnmtl_error *err)
{
    double bytes = (double)n * h * w * c;
    if (bytes <= (double)max_bytes) return TNMTL_OK;
    char shape[64];
    if (c == 1) snprintf(shape, sizeof shape, "%dx%d", h, w);
    else snprintf(shape, sizeof shape, "%dx%dx%d", h, w, c);
    return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: %lld images of %s would need %.0f MB, more than the limit of %.0f MB (%s)",
                      what, (long long)n, shape, bytes / 1e6, (double)max_bytes / 1e6, hint);
}
