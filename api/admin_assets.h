#ifndef GENQ_API_ADMIN_ASSETS_H
#define GENQ_API_ADMIN_ASSETS_H

#include <stddef.h>

/* The dashboard's files (api/admin/), compiled in by cmake/embed_files.cmake:
 * sorted by name, ended by a NULL name. */
typedef struct {
  const char *name; /* "index.html" */
  const char *content_type;
  const unsigned char *data;
  size_t len;
} api_admin_asset;

extern const api_admin_asset api_admin_assets[];
extern const int api_admin_assets_count;

#endif
