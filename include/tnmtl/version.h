/* tnmtl/version.h - the library's version, at compile time and at run time.
 *
 * Semantic versioning on the binary interface (ABI):
 *   PATCH  fixes; nothing in the headers changes
 *   MINOR  additions: new functions, new headers, enum values added at the end
 *   MAJOR  anything that breaks a program built against an older release: a
 *          removed or changed function, a changed public struct layout
 * The shared library's soname is libtnmtl.so.MAJOR, so programs built against
 * one MAJOR never load another.  The Makefile and tnmtl.pc take the version
 * from the three numbers below (the single source of truth).
 */
#ifndef TNMTL_VERSION_H
#define TNMTL_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_VERSION_MAJOR 0
#define TNMTL_VERSION_MINOR 2
#define TNMTL_VERSION_PATCH 0

#define TNMTL_VERSION_STR_(x) #x
#define TNMTL_VERSION_STR(x) TNMTL_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH", e.g. "0.1.0" */
#define TNMTL_VERSION                                                       \
    TNMTL_VERSION_STR(TNMTL_VERSION_MAJOR) "." TNMTL_VERSION_STR(TNMTL_VERSION_MINOR) "." \
    TNMTL_VERSION_STR(TNMTL_VERSION_PATCH)
/* One comparable number: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define TNMTL_VERSION_NUMBER (TNMTL_VERSION_MAJOR * 10000 + TNMTL_VERSION_MINOR * 100 + TNMTL_VERSION_PATCH)

/* The version of the library actually linked or loaded (TNMTL_VERSION is
 * the one of the headers a program was compiled with). */
const char *tnmtl_version(void);
int tnmtl_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
