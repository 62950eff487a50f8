/* Unit tests for core/addr_rule.c: parsing of addresses and CIDR blocks
 * (IPv4, IPv6, IPv4-mapped, "unix", prefix 0 and full, bad inputs),
 * matching of socket peers, and how allow and deny combine. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr_rule.h"

/* The peer address of a client at text ("unix" for a Unix socket, "?" for
 * an address that could not be read). */
static cr_addr peer(const char *text)
{
    struct sockaddr_storage ss;
    cr_addr a;

    memset(&ss, 0, sizeof(ss));
    if (strcmp(text, "unix") == 0) {
        ss.ss_family = AF_UNIX;
    } else if (strcmp(text, "?") == 0) {
        ss.ss_family = AF_UNSPEC;
    } else if (strchr(text, ':') == NULL) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        in->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        in6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    }
    cr_addr_from_sockaddr(&a, (struct sockaddr *)&ss);
    return a;
}

/* Whether the rule written as rule_text matches the client at peer_text. */
static bool matches(const char *rule_text, const char *peer_text)
{
    cr_addr_rule rule;
    cr_addr a = peer(peer_text);

    ck_assert_msg(cr_addr_rule_parse(rule_text, &rule) == 0, "'%s' should parse", rule_text);
    return cr_addr_rule_matches(&rule, &a);
}

START_TEST(test_ipv4)
{
    ck_assert(matches("127.0.0.1", "127.0.0.1"));
    ck_assert(!matches("127.0.0.1", "127.0.0.2"));
    ck_assert(matches("127.0.0.1/32", "127.0.0.1"));
    ck_assert(!matches("127.0.0.1/32", "127.0.0.2"));
    ck_assert(matches("10.0.0.0/8", "10.255.1.2"));
    ck_assert(!matches("10.0.0.0/8", "11.0.0.1"));
    ck_assert(!matches("10.0.0.0/8", "9.255.255.255"));
    /* A prefix that ends inside a byte. */
    ck_assert(matches("192.168.0.0/23", "192.168.1.255"));
    ck_assert(!matches("192.168.0.0/23", "192.168.2.0"));
    ck_assert(matches("172.16.0.0/12", "172.31.0.1"));
    ck_assert(!matches("172.16.0.0/12", "172.32.0.1"));
    /* Bits below the prefix are ignored. */
    ck_assert(matches("10.1.2.3/8", "10.9.9.9"));
}
END_TEST

START_TEST(test_ipv6)
{
    ck_assert(matches("::1", "::1"));
    ck_assert(!matches("::1", "::2"));
    ck_assert(matches("::1/128", "::1"));
    ck_assert(matches("fe80::/10", "fe80::1"));
    ck_assert(matches("fe80::/10", "febf:ffff::1"));
    ck_assert(!matches("fe80::/10", "fec0::1"));
    ck_assert(matches("2001:db8::/32", "2001:db8:1234::5"));
    ck_assert(!matches("2001:db8::/32", "2001:db9::5"));
    ck_assert(matches("2001:db8::/127", "2001:db8::1"));
    ck_assert(!matches("2001:db8::/127", "2001:db8::2"));
}
END_TEST

START_TEST(test_families_stay_apart)
{
    ck_assert(!matches("::1", "127.0.0.1"));
    ck_assert(!matches("127.0.0.1", "::1"));
    ck_assert(!matches("::/0", "127.0.0.1"));
    ck_assert(!matches("0.0.0.0/0", "::1"));
    ck_assert(!matches("0.0.0.0/0", "unix"));
    ck_assert(!matches("::/0", "unix"));
    ck_assert(!matches("unix", "127.0.0.1"));
    ck_assert(!matches("unix", "::1"));
    ck_assert(matches("unix", "unix"));
}
END_TEST

START_TEST(test_mapped)
{
    /* A client of an IPv6 listener with an IPv4-mapped address is IPv4. */
    ck_assert(matches("127.0.0.1", "::ffff:127.0.0.1"));
    ck_assert(matches("127.0.0.0/8", "::ffff:127.9.9.9"));
    ck_assert(!matches("127.0.0.1", "::ffff:127.0.0.2"));
    ck_assert(!matches("::/0", "::ffff:127.0.0.1"));
    ck_assert(matches("0.0.0.0/0", "::ffff:1.2.3.4"));
    /* A rule written in the mapped form is the IPv4 rule. */
    ck_assert(matches("::ffff:10.0.0.0/104", "10.2.3.4"));
    ck_assert(matches("::ffff:10.0.0.0/104", "::ffff:10.2.3.4"));
    ck_assert(!matches("::ffff:10.0.0.0/104", "11.2.3.4"));
    ck_assert(matches("::ffff:127.0.0.1", "127.0.0.1"));
    ck_assert(matches("::ffff:0.0.0.0/96", "8.8.8.8"));
}
END_TEST

START_TEST(test_prefix_zero_and_full)
{
    ck_assert(matches("0.0.0.0/0", "0.0.0.0"));
    ck_assert(matches("0.0.0.0/0", "255.255.255.255"));
    ck_assert(matches("1.2.3.4/0", "9.9.9.9"));
    ck_assert(matches("::/0", "::"));
    ck_assert(matches("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    ck_assert(matches("255.255.255.255/32", "255.255.255.255"));
    ck_assert(!matches("255.255.255.255/32", "255.255.255.254"));
    ck_assert(matches("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    ck_assert(!matches("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
}
END_TEST

START_TEST(test_bad_inputs)
{
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.0/ 8",
        "10.0.0.0/8 ",
        "10.0.0.0/0008",
        "10.0.0.0/x",
        "10.0.0",
        "256.0.0.1",
        "1.2.3.4.5",
        "localhost",
        "UNIX",
        "unix/8",
        "[::1]",
        "fe80::1%lo",
        " 127.0.0.1",
        "127.0.0.1 ",
        "::1::",
        "::ffff:10.0.0.0/129",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000/1",
    };
    cr_addr_rule rule;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(cr_addr_rule_parse(bad[i], &rule) == -1, "'%s' should be refused", bad[i]);
}
END_TEST

START_TEST(test_unknown_peer)
{
    cr_addr none = peer("?");
    cr_addr_rule rule;
    cr_addr_rules open = {0};
    cr_addr_rules deny_only = {.deny = &rule, .ndeny = 1};

    ck_assert_int_eq(none.family, CR_ADDR_NONE);
    ck_assert_int_eq(cr_addr_rule_parse("0.0.0.0/0", &rule), 0);
    ck_assert(!cr_addr_rule_matches(&rule, &none));
    /* No rules: everyone; any rule: not a client it cannot place. */
    ck_assert(cr_addr_rules_admit(&open, &none));
    ck_assert(!cr_addr_rules_admit(&deny_only, &none));
}
END_TEST

/* rules from up to 3 allow and 3 deny entries (NULL-padded). */
static cr_addr_rules make_rules(cr_addr_rule *store, const char *const allow[3],
                                const char *const deny[3])
{
    cr_addr_rules r = {.allow = store, .deny = store + 3};

    for (int i = 0; i < 3 && allow[i]; i++)
        ck_assert_int_eq(cr_addr_rule_parse(allow[i], &r.allow[r.nallow++]), 0);
    for (int i = 0; i < 3 && deny[i]; i++)
        ck_assert_int_eq(cr_addr_rule_parse(deny[i], &r.deny[r.ndeny++]), 0);
    return r;
}

static bool admits(const cr_addr_rules *r, const char *peer_text)
{
    cr_addr a = peer(peer_text);

    return cr_addr_rules_admit(r, &a);
}

START_TEST(test_allow_and_deny)
{
    cr_addr_rule store[6];
    const char *const none[3] = {NULL};
    const char *const loopback[3] = {"127.0.0.1", "::1", NULL};
    const char *const net[3] = {"127.0.0.0/8", NULL};
    const char *const one[3] = {"127.0.0.1", NULL};
    cr_addr_rules r;

    r = make_rules(store, loopback, none);
    ck_assert(admits(&r, "127.0.0.1"));
    ck_assert(admits(&r, "::1"));
    ck_assert(admits(&r, "::ffff:127.0.0.1"));
    ck_assert(!admits(&r, "127.0.0.2"));
    ck_assert(!admits(&r, "10.0.0.1"));
    ck_assert(!admits(&r, "unix"));

    r = make_rules(store, none, one);
    ck_assert(!admits(&r, "127.0.0.1"));
    ck_assert(!admits(&r, "::ffff:127.0.0.1"));
    ck_assert(admits(&r, "127.0.0.2"));
    ck_assert(admits(&r, "::1"));
    ck_assert(admits(&r, "unix"));

    /* Both: deny wins, then allow must match. */
    r = make_rules(store, net, one);
    ck_assert(!admits(&r, "127.0.0.1"));
    ck_assert(admits(&r, "127.0.0.2"));
    ck_assert(!admits(&r, "10.0.0.1"));
    ck_assert(!admits(&r, "::1"));
}
END_TEST

START_TEST(test_free_empties)
{
    cr_addr_rules r = {.allow = calloc(2, sizeof(cr_addr_rule)), .nallow = 2};

    cr_addr_rules_free(&r);
    ck_assert_ptr_null(r.allow);
    ck_assert_uint_eq(r.nallow, 0);
    cr_addr_rules_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("addr_rule");
    TCase *tc = tcase_create("rules");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_ipv4);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_families_stay_apart);
    tcase_add_test(tc, test_mapped);
    tcase_add_test(tc, test_prefix_zero_and_full);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_unknown_peer);
    tcase_add_test(tc, test_allow_and_deny);
    tcase_add_test(tc, test_free_empties);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
