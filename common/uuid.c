/* uuid.c — genq_is_uuid (see uuid.h). */
#include "uuid.h"

int genq_is_uuid(const char *s) {
  if (!s) return 0;
  for (int i = 0; i < 36; i++) {         /* stops at a NUL: neither '-' nor hex */
    char c = s[i], l = (char)(c | 0x20); /* ASCII lower case */
    int hex = (c >= '0' && c <= '9') || (l >= 'a' && l <= 'f');
    if (i == 8 || i == 13 || i == 18 || i == 23 ? c != '-' : !hex) return 0;
  }
  return s[36] == '\0';
}
