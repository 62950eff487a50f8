/* Client address rules: parsing at config load (inet_pton happens here,
 * once), matching at request time over binary addresses only. IPv4 rules
 * and peers keep their 4 bytes at the front of the 16; an IPv4-mapped IPv6
 * address, from a peer or in a rule, is turned into plain IPv4 so that one
 * set of IPv4 rules covers clients of both kinds of listener. */
#include "addr_rule.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define CR_ADDR_V4_LEN        4
#define CR_ADDR_V4_BITS       32
#define CR_ADDR_V6_BITS       128
#define CR_ADDR_MAPPED_BITS   96 /* ::ffff:0:0/96 holds the IPv4 addresses */
#define CR_ADDR_PREFIX_DIGITS 3

static const uint8_t cr_addr_mapped_prefix[CR_ADDR_MAPPED_BITS / 8] = {0, 0, 0, 0, 0,    0,
                                                                       0, 0, 0, 0, 0xff, 0xff};

/* A prefix length: 1 to 3 decimal digits, at most max. */
static int cr_addr_parse_prefix(const char *s, unsigned max, unsigned *out)
{
    size_t n = strlen(s);
    unsigned v = 0;

    if (n == 0 || n > CR_ADDR_PREFIX_DIGITS)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* An address without prefix: its family, bytes and number of bits. */
static int cr_addr_parse_ip(const char *text, cr_addr *a, unsigned *bits)
{
    if (inet_pton(AF_INET, text, a->bytes) == 1) {
        a->family = CR_ADDR_V4;
        *bits = CR_ADDR_V4_BITS;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a->bytes) != 1)
        return -1;
    a->family = CR_ADDR_V6;
    *bits = CR_ADDR_V6_BITS;
    return 0;
}

/* Peers with a mapped address count as IPv4, so a rule written as
 * "::ffff:10.0.0.0/104" must be the IPv4 rule 10.0.0.0/8 to match them. */
static void cr_addr_rule_unmap(cr_addr_rule *r, unsigned *prefix)
{
    if (r->net.family != CR_ADDR_V6 || *prefix < CR_ADDR_MAPPED_BITS ||
        memcmp(r->net.bytes, cr_addr_mapped_prefix, sizeof(cr_addr_mapped_prefix)) != 0)
        return;
    memmove(r->net.bytes, r->net.bytes + sizeof(cr_addr_mapped_prefix), CR_ADDR_V4_LEN);
    memset(r->net.bytes + CR_ADDR_V4_LEN, 0, CR_ADDR_BYTES - CR_ADDR_V4_LEN);
    r->net.family = CR_ADDR_V4;
    *prefix -= CR_ADDR_MAPPED_BITS;
}

/* The mask of the first `bits` bits; the network keeps only those. */
static void cr_addr_rule_set_mask(cr_addr_rule *r, unsigned bits)
{
    memset(r->mask, 0, sizeof(r->mask));
    memset(r->mask, 0xff, bits / 8);
    if (bits % 8)
        r->mask[bits / 8] = (uint8_t)(0xff << (8 - bits % 8));
    for (size_t i = 0; i < CR_ADDR_BYTES; i++)
        r->net.bytes[i] &= r->mask[i];
}

int cr_addr_rule_parse(const char *text, cr_addr_rule *out)
{
    char ip[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned bits, prefix;

    memset(out, 0, sizeof(*out));
    if (strcmp(text, CR_ADDR_UNIX_WORD) == 0) {
        out->net.family = CR_ADDR_UNIX;
        return 0;
    }
    if (len == 0 || len >= sizeof(ip))
        return -1;
    memcpy(ip, text, len);
    ip[len] = '\0';
    if (cr_addr_parse_ip(ip, &out->net, &bits) < 0)
        return -1;
    prefix = bits;
    if (slash != NULL && cr_addr_parse_prefix(slash + 1, bits, &prefix) < 0)
        return -1;
    cr_addr_rule_unmap(out, &prefix);
    cr_addr_rule_set_mask(out, prefix);
    return 0;
}

void cr_addr_from_sockaddr(cr_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        a->family = CR_ADDR_V4;
        memcpy(a->bytes, &in->sin_addr, CR_ADDR_V4_LEN);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            a->family = CR_ADDR_V4;
            memcpy(a->bytes, in6->sin6_addr.s6_addr + sizeof(cr_addr_mapped_prefix),
                   CR_ADDR_V4_LEN);
        } else {
            a->family = CR_ADDR_V6;
            memcpy(a->bytes, &in6->sin6_addr, CR_ADDR_BYTES);
        }
    } else if (sa->sa_family == AF_UNIX) {
        a->family = CR_ADDR_UNIX;
    }
}

bool cr_addr_rule_matches(const cr_addr_rule *rule, const cr_addr *a)
{
    if (a->family == CR_ADDR_NONE || rule->net.family != a->family)
        return false;
    for (size_t i = 0; i < CR_ADDR_BYTES; i++)
        if ((a->bytes[i] & rule->mask[i]) != rule->net.bytes[i])
            return false;
    return true;
}

static bool cr_addr_rules_any(const cr_addr_rule *v, size_t n, const cr_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (cr_addr_rule_matches(&v[i], a))
            return true;
    return false;
}

bool cr_addr_rules_admit(const cr_addr_rules *rules, const cr_addr *a)
{
    if (rules->nallow == 0 && rules->ndeny == 0)
        return true;
    /* Fail closed: a route that names its clients serves none it cannot
     * name. */
    if (a->family == CR_ADDR_NONE)
        return false;
    if (cr_addr_rules_any(rules->deny, rules->ndeny, a))
        return false;
    return rules->nallow == 0 || cr_addr_rules_any(rules->allow, rules->nallow, a);
}

void cr_addr_rules_free(cr_addr_rules *rules)
{
    free(rules->allow);
    free(rules->deny);
    memset(rules, 0, sizeof(*rules));
}
