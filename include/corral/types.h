/* corral public types shared by modules, MPMs and the core: status codes,
 * length-delimited strings and header pairs. Everything a module sees is
 * built from these. */
#ifndef CORRAL_TYPES_H
#define CORRAL_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Status codes returned by core functions and module hooks. A handler
 * returns one of these or an HTTP status code (100..599); a status code
 * asks the core to send its standard error page for that status. */
enum {
    CR_OK = 0,
    CR_ERROR = -1,
    CR_AGAIN = -2,
    CR_DONE = -4,
    CR_DECLINED = -5,
    CR_SUSPENDED = -6,
};

/* A length-delimited string that points into memory owned by someone else
 * (usually the connection's read buffer). Not NUL-terminated unless stated. */
typedef struct cr_str {
    const char *ptr;
    size_t len;
} cr_str;

/* One request header as received: name and value, value trimmed of
 * surrounding whitespace. */
typedef struct cr_header {
    cr_str name;
    cr_str value;
} cr_header;

#define CR_STR(lit) ((cr_str){(lit), sizeof(lit) - 1})

#endif
