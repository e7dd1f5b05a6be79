/* image.h - decoding PNG and JPEG files and resizing them with an area
 * filter (internal; shared by the Omniglot and image-folder loaders).
 *
 * Decoding rules (the same for every file, so that an image folder and an
 * array of the same pixels give the same dataset):
 *   - any PNG colour type and bit depth; palettes and tRNS are expanded,
 *     16-bit samples scaled to 8 bits with rounding (v * 255 / 65535);
 *   - alpha is composited over white: v' = (v * a + 255 * (255 - a) + 127) / 255;
 *   - colour to grey: L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (the
 *     ITU-R 601 luma of PIL's convert("L")); grey to colour repeats L;
 *   - JPEG (libjpeg-turbo): the decoder's own grey (Y) or RGB output; a
 *     warning of the decoder (truncated or corrupt data) is an error.
 * Output is 8-bit, HWC, channels 1 or 3.
 */
#ifndef TNMTL_IMAGE_H
#define TNMTL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

#define TNMTL_IMAGE_MAX_SIDE 16384

typedef enum { TNMTL_IMAGE_PNG = 1, TNMTL_IMAGE_JPEG = 2 } tnmtl_image_format;

typedef struct tnmtl_image_info {
    tnmtl_image_format format;
    int width, height;
    int colour;        /* 0: grey (with or without alpha), 1: colour or palette */
} tnmtl_image_info;

/* Reads the header of the image in buf[len]; name is for messages.  A file
 * that is neither PNG nor JPEG, is empty, or whose header is cut off or
 * out of range fails with TNMTL_ERR_FORMAT naming it. */
tnmtl_status tnmtl_image_probe(const unsigned char *buf, size_t len, const char *name, tnmtl_image_info *info,
                               tnmtl_error *err);

/* Decodes buf[len] into out[height][width][channels] (channels 1 or 3);
 * the image must be width x height (as probed). */
tnmtl_status tnmtl_image_decode(const unsigned char *buf, size_t len, const char *name, int width, int height,
                                int channels, uint8_t *out, tnmtl_error *err);

/* Area filter in_h x in_w -> out_h x out_w over c interleaved channels
 * (1 <= sides <= 4096): output pixel (i, j) is the mean of the source over
 * its rectangle [i*in_h/out_h, (i+1)*in_h/out_h) x [j*in_w/out_w, ...),
 * source pixels weighted by their exact fractional coverage, rounded to
 * nearest (halves up).  Works for shrinking and enlarging; equal sizes copy. */
typedef struct tnmtl_resizer {
    int in_h, in_w, out_h, out_w, c;
    int span_h, span_w;
    int *lo_h, *len_h, *w_h;   /* [out_h], [out_h], [out_h][span_h] */
    int *lo_w, *len_w, *w_w;   /* [out_w], [out_w], [out_w][span_w] */
    int32_t *tmp;              /* [in_h][out_w][c] row sums          */
} tnmtl_resizer;

tnmtl_status tnmtl_resizer_init(tnmtl_resizer *r, int in_h, int in_w, int out_h, int out_w, int c,
                                tnmtl_error *err);
void tnmtl_resizer_apply(tnmtl_resizer *r, const uint8_t *src, uint8_t *dst);
void tnmtl_resizer_free(tnmtl_resizer *r);

/* Refuses (TNMTL_ERR_TOO_BIG) n images of h x w x c bytes over max_bytes,
 * with the estimate in the message: "what: N images of HxW[xC] would need
 * X MB, more than the limit of Y MB (hint)". */
tnmtl_status tnmtl_image_memory_check(const char *what, int64_t n, int h, int w, int c, size_t max_bytes,
                                      const char *hint, tnmtl_error *err);

#endif
