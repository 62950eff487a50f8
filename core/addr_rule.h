/* Client address rules of a route (its `allow` and `deny` keys): addresses
 * and CIDR blocks parsed once at config load into binary networks and
 * masks, matched against a connection's peer address without allocating. */
#ifndef CR_ADDR_RULE_H
#define CR_ADDR_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CR_ADDR_BYTES     16     /* room for an IPv6 address; IPv4 uses the first 4 */
#define CR_ADDR_UNIX_WORD "unix" /* the rule entry that names Unix-socket clients */

/* What kind of client an address is. An IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d) is CR_ADDR_V4, so IPv4 rules apply to it. */
typedef enum cr_addr_family {
    CR_ADDR_NONE = 0, /* unknown: the peer's address could not be read */
    CR_ADDR_V4,
    CR_ADDR_V6,
    CR_ADDR_UNIX,
} cr_addr_family;

typedef struct cr_addr {
    uint8_t family; /* cr_addr_family */
    uint8_t bytes[CR_ADDR_BYTES];
} cr_addr;

/* One entry of a list: the network (host bits cleared) and its mask. */
typedef struct cr_addr_rule {
    cr_addr net;
    uint8_t mask[CR_ADDR_BYTES];
} cr_addr_rule;

/* A route's rules; both lists empty: every client is admitted. */
typedef struct cr_addr_rules {
    cr_addr_rule *allow;
    size_t nallow;
    cr_addr_rule *deny;
    size_t ndeny;
} cr_addr_rules;

/* Parses one entry: "unix", an IPv4 or IPv6 address, or either followed by
 * "/PREFIX" (0..32, 0..128). Bits below the prefix are ignored, as in
 * "10.1.2.3/8" for 10.0.0.0/8. Returns 0, or -1 when text is none of those. */
int cr_addr_rule_parse(const char *text, cr_addr_rule *out);

/* The binary address of a socket peer (AF_INET, AF_INET6, AF_UNIX);
 * CR_ADDR_NONE for any other family. */
void cr_addr_from_sockaddr(cr_addr *a, const struct sockaddr *sa);

/* Whether a lies in the rule's network (same family, masked bytes equal). */
bool cr_addr_rule_matches(const cr_addr_rule *rule, const cr_addr *a);

/* Whether the rules let a in: refused when it matches `deny`; otherwise,
 * when `allow` is not empty, admitted only when it matches `allow`. An
 * unknown peer is refused by any rule at all. */
bool cr_addr_rules_admit(const cr_addr_rules *rules, const cr_addr *a);

/* Frees both lists and empties rules. */
void cr_addr_rules_free(cr_addr_rules *rules);

#endif
