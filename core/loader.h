/* Loads what a config names: the MPM and the handler modules (shared
 * objects checked for magic and ABI version), runs their config hooks and
 * builds the routes, producing a complete generation or a precise error. */
#ifndef CR_LOADER_H
#define CR_LOADER_H

#include <stdio.h>

#include "server.h"

/* Fills g from the config file plus -o overrides. On failure g is freed
 * and err names file, line and key where there is one. */
int cr_generation_load(cr_generation *g, const char *exe_dir, const char *file,
                       char *const *overrides, size_t noverrides, char *err, size_t errlen);

void cr_generation_free(cr_generation *g);

/* The folder of the running executable (malloc'ed), from which modules
 * are looked for beside a build tree or a relocated install; NULL when
 * /proc does not tell. */
char *cr_loader_exe_dir(void);

/* Writes the folders modules and MPMs are looked for in, in order, those
 * that exist, one per line with `indent` before each. */
void cr_loader_list_dirs(FILE *out, const char *exe_dir, const char *module_path,
                         const char *indent);

/* Writes the MPMs found on the search path, one name per line. */
void cr_loader_list_mpms(FILE *out, const char *exe_dir, const char *module_path);

#endif
