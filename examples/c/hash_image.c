/*
 * hash_image: PDQ-hashes a binary PPM (P6) or PGM (P5) image through the hashguard C ABI.
 *
 *   hash_image [--dihedral] [--verbose] FILE      (FILE may be "-" for standard input)
 *
 * Prints "<64 hex digits> <quality>", or with --dihedral eight lines "<transform> <hex>".
 * --verbose also writes the library version, PDQ kernel and the error-path check to stderr.
 * Exit status: 0 success; 1 a hashguard call failed (or stdout could not be written);
 * 2 bad usage or an unreadable image.
 *
 * Only 8-bit images (maxval 255) are accepted. Bytes after the first image are ignored.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashguard.h"

#define EXIT_HG_FAILURE 1
#define EXIT_BAD_INPUT 2

/* Transform names in the order hg_pdq_hash_dihedral writes its hashes. */
static const char *const TRANSFORM_NAMES[HG_PDQ_DIHEDRAL_COUNT] = {
    "orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1",
};

static const char *status_name(hg_status status)
{
    switch (status) {
    case HG_OK: return "HG_OK";
    case HG_NULL_POINTER: return "HG_NULL_POINTER";
    case HG_INVALID_ARGUMENT: return "HG_INVALID_ARGUMENT";
    case HG_BUFFER_TOO_SMALL: return "HG_BUFFER_TOO_SMALL";
    case HG_PARSE_ERROR: return "HG_PARSE_ERROR";
    case HG_INTERNAL_ERROR: return "HG_INTERNAL_ERROR";
    default: return "unknown status";
    }
}

/*
 * Returns this thread's last hashguard error message in a malloc'd string (caller frees), or
 * NULL if out of memory. The first call asks for the length only; the second copies it.
 */
static char *last_error_message(void)
{
    size_t len = hg_last_error_message(NULL, 0);
    char *msg = malloc(len + 1);
    if (msg != NULL) {
        hg_last_error_message(msg, len + 1);
    }
    return msg;
}

/* Prints a failed call's status and message to stderr. */
static void report_failure(const char *call, hg_status status)
{
    char *msg = last_error_message();
    fprintf(stderr, "hash_image: %s failed with %s (%" PRId32 "): %s\n", call,
            status_name(status), status, msg != NULL ? msg : "(no memory for the message)");
    free(msg);
}

/*
 * Deliberate failure, run on every start so that CI exercises the error path: 63 hex digits
 * are not a PDQ hash, so hg_pdq_from_hex must return HG_PARSE_ERROR and leave a message.
 * Returns 0 if the library behaved as documented; prints the message if `verbose`.
 */
static int check_error_path(int verbose)
{
    static const char short_hex[] =
        "000000000000000000000000000000000000000000000000000000000000000"; /* 63 digits */
    uint8_t hash[HG_PDQ_HASH_BYTES];
    hg_status status = hg_pdq_from_hex(short_hex, strlen(short_hex), hash);
    char *msg;
    int ok;

    if (status != HG_PARSE_ERROR) {
        fprintf(stderr, "hash_image: error-path check: expected HG_PARSE_ERROR, got %s (%" PRId32
                ")\n", status_name(status), status);
        return -1;
    }
    msg = last_error_message();
    ok = msg != NULL && msg[0] != '\0';
    if (!ok || verbose) {
        fprintf(stderr, "hash_image: error-path check: hg_pdq_from_hex(63 digits) -> %s: %s\n",
                status_name(status), ok ? msg : "(no message)");
    }
    free(msg);
    return ok ? 0 : -1;
}

/* ---- PPM/PGM reading ---------------------------------------------------------------------- */

struct image {
    uint32_t width;
    uint32_t height;
    uint32_t layout;   /* HG_LAYOUT_RGB8 or HG_LAYOUT_GREY8 */
    size_t stride;     /* bytes per row; rows are packed */
    size_t len;        /* stride * height */
    uint8_t *pixels;
};

/* Skips whitespace and '#' comments (to the end of the line). Returns how many bytes it skipped. */
static size_t skip_separators(FILE *in)
{
    size_t skipped = 0;
    int c;
    while ((c = getc(in)) != EOF) {
        if (c == '#') {
            while ((c = getc(in)) != EOF && c != '\n' && c != '\r') {
                skipped++;
            }
            if (c == EOF) {
                break;
            }
        } else if (!isspace(c)) {
            ungetc(c, in);
            break;
        }
        skipped++;
    }
    return skipped;
}

/*
 * Reads one header number, which must follow at least one separator. Returns 0 and stores it,
 * or -1 if there is no number or it is larger than `max`.
 */
static int read_header_number(FILE *in, uint32_t max, uint32_t *out)
{
    uint32_t value = 0;
    int digits = 0;
    int c;

    if (skip_separators(in) == 0) {
        return -1;
    }
    while ((c = getc(in)) != EOF && isdigit(c)) {
        uint32_t d = (uint32_t)(c - '0');
        if (value > (max - d) / 10) {
            return -1;
        }
        value = value * 10 + d;
        digits++;
    }
    if (c != EOF) {
        ungetc(c, in);
    }
    if (digits == 0) {
        return -1;
    }
    *out = value;
    return 0;
}

/* Reads a P5 or P6 image. On failure returns -1 and points *why at a description. */
static int read_pnm(FILE *in, struct image *img, const char **why)
{
    uint32_t maxval;
    size_t channels;
    int c0 = getc(in);
    int c1 = getc(in);

    if (c0 != 'P' || (c1 != '5' && c1 != '6')) {
        *why = "not a binary PPM (P6) or PGM (P5) file";
        return -1;
    }
    channels = c1 == '6' ? 3 : 1;
    img->layout = c1 == '6' ? HG_LAYOUT_RGB8 : HG_LAYOUT_GREY8;

    if (read_header_number(in, UINT32_MAX, &img->width) != 0
        || read_header_number(in, UINT32_MAX, &img->height) != 0
        || read_header_number(in, 65535, &maxval) != 0) {
        *why = "malformed header (expected width, height and maxval)";
        return -1;
    }
    if (img->width == 0 || img->height == 0) {
        *why = "width and height must be positive";
        return -1;
    }
    if (maxval != 255) {
        *why = "only maxval 255 (8 bits per sample) is supported";
        return -1;
    }
    /* Exactly one whitespace byte separates the header from the raster. */
    if (!isspace(getc(in))) {
        *why = "malformed header (no whitespace after maxval)";
        return -1;
    }

    if (img->width > SIZE_MAX / channels || img->height > SIZE_MAX / (img->width * channels)) {
        *why = "image too large";
        return -1;
    }
    img->stride = img->width * channels;
    img->len = img->stride * img->height;
    img->pixels = malloc(img->len);
    if (img->pixels == NULL) {
        *why = "out of memory for the pixels";
        return -1;
    }
    if (fread(img->pixels, 1, img->len, in) != img->len) {
        free(img->pixels);
        img->pixels = NULL;
        *why = ferror(in) ? "read error" : "pixel data is shorter than the header says";
        return -1;
    }
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

/* Formats a hash as 64 hex digits plus NUL. Returns 0, or -1 after reporting a failure. */
static int format_hash(const uint8_t *hash, char hex[HG_PDQ_HEX_BYTES])
{
    hg_status status = hg_pdq_to_hex(hash, hex);
    if (status != HG_OK) {
        report_failure("hg_pdq_to_hex", status);
        return -1;
    }
    return 0;
}

static int hash_and_print(const struct image *img, int dihedral)
{
    char hex[HG_PDQ_HEX_BYTES];
    int32_t quality = 0;
    hg_status status;

    if (!dihedral) {
        uint8_t hash[HG_PDQ_HASH_BYTES];
        status = hg_pdq_hash(img->pixels, img->len, img->width, img->height, img->stride,
                             img->layout, hash, &quality);
        if (status != HG_OK) {
            report_failure("hg_pdq_hash", status);
            return -1;
        }
        if (format_hash(hash, hex) != 0) {
            return -1;
        }
        printf("%s %" PRId32 "\n", hex, quality);
    } else {
        uint8_t hashes[HG_PDQ_DIHEDRAL_COUNT * HG_PDQ_HASH_BYTES];
        size_t i;
        status = hg_pdq_hash_dihedral(img->pixels, img->len, img->width, img->height, img->stride,
                                      img->layout, hashes, &quality);
        if (status != HG_OK) {
            report_failure("hg_pdq_hash_dihedral", status);
            return -1;
        }
        for (i = 0; i < HG_PDQ_DIHEDRAL_COUNT; i++) {
            if (format_hash(hashes + i * HG_PDQ_HASH_BYTES, hex) != 0) {
                return -1;
            }
            printf("%s %s\n", TRANSFORM_NAMES[i], hex);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *why = NULL;
    int dihedral = 0;
    int verbose = 0;
    struct image img;
    FILE *in;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dihedral") == 0) {
            dihedral = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (path == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }
    if (path == NULL) {
        fputs("usage: hash_image [--dihedral] [--verbose] FILE.ppm|FILE.pgm|-\n", stderr);
        return EXIT_BAD_INPUT;
    }

    if (verbose) {
        fprintf(stderr, "hash_image: hashguard %s, PDQ kernel %s\n", hg_version(),
                hg_pdq_kernel());
    }
    if (check_error_path(verbose) != 0) {
        return EXIT_HG_FAILURE;
    }

    in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (in == NULL) {
        fprintf(stderr, "hash_image: %s: %s\n", path, strerror(errno));
        return EXIT_BAD_INPUT;
    }
    rc = read_pnm(in, &img, &why);
    if (in != stdin) {
        fclose(in);
    }
    if (rc != 0) {
        fprintf(stderr, "hash_image: %s: %s\n", path, why);
        return EXIT_BAD_INPUT;
    }

    rc = hash_and_print(&img, dihedral);
    free(img.pixels);
    if (rc != 0) {
        return EXIT_HG_FAILURE;
    }
    return fflush(stdout) == 0 ? 0 : EXIT_HG_FAILURE;
}
