/* version.c - the version the library was built as (tnmtl/version.h). */
#include "tnmtl/version.h"

const char *tnmtl_version(void) { return TNMTL_VERSION; }

int tnmtl_version_number(void) { return TNMTL_VERSION_NUMBER; }
