/* Unit tests for core/router.c: prefix matching on segment boundaries,
 * host scoping, config order and continuing after a declined route. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static cr_str S(const char *s)
{
    return (cr_str){s, strlen(s)};
}

static cr_route routes[] = {
    {.path = {"/hello", 6}},
    {.path = {"/static/", 8}},
    {.path = {"/", 1}, .host = "example.com"},
    {.path = {"/", 1}},
    {.path = {"/v", 2}, .host = "one.test *.two.test [::1]"},
};
static const cr_router router = {routes, sizeof(routes) / sizeof(routes[0])};

START_TEST(test_prefix_segment_boundary)
{
    ck_assert(cr_route_prefix_matches(S("/hello"), S("/hello")));
    ck_assert(cr_route_prefix_matches(S("/hello"), S("/hello/x")));
    ck_assert(!cr_route_prefix_matches(S("/hello"), S("/helloworld")));
    ck_assert(!cr_route_prefix_matches(S("/hello"), S("/hell")));
    ck_assert(cr_route_prefix_matches(S("/static/"), S("/static/a.css")));
    ck_assert(!cr_route_prefix_matches(S("/static/"), S("/static")));
    ck_assert(cr_route_prefix_matches(S("/"), S("/anything")));
}
END_TEST

START_TEST(test_first_match_in_order)
{
    ck_assert_int_eq(cr_router_match(&router, 0, S(""), S("/hello")), 0);
    ck_assert_int_eq(cr_router_match(&router, 0, S(""), S("/hello/a")), 0);
    ck_assert_int_eq(cr_router_match(&router, 0, S(""), S("/static/x")), 1);
    ck_assert_int_eq(cr_router_match(&router, 0, S(""), S("/helloworld")), 3);
}
END_TEST

START_TEST(test_declined_continues)
{
    ck_assert_int_eq(cr_router_match(&router, 1, S(""), S("/hello")), 3);
    ck_assert_int_eq(cr_router_match(&router, 4, S(""), S("/hello")), -1);
}
END_TEST

START_TEST(test_host_lists_and_wildcards)
{
    ck_assert_int_eq(cr_router_match(&router, 4, S("one.test"), S("/v")), 4);
    ck_assert_int_eq(cr_router_match(&router, 4, S("ONE.test:81"), S("/v")), 4);
    ck_assert_int_eq(cr_router_match(&router, 4, S("x.two.test"), S("/v")), 4);
    ck_assert_int_eq(cr_router_match(&router, 4, S("a.b.two.test"), S("/v")), 4);
    ck_assert_int_eq(cr_router_match(&router, 4, S("two.test"), S("/v")), -1);
    ck_assert_int_eq(cr_router_match(&router, 4, S("xtwo.test"), S("/v")), -1);
    ck_assert_int_eq(cr_router_match(&router, 4, S("[::1]:8080"), S("/v")), 4);
    ck_assert_int_eq(cr_router_match(&router, 4, S("one.tes"), S("/v")), -1);
    ck_assert_int_eq(cr_router_match(&router, 4, S("one.test.x"), S("/v")), -1);
    ck_assert_int_eq(cr_router_match(&router, 4, S(""), S("/v")), -1);
}
END_TEST

START_TEST(test_host_scoping)
{
    ck_assert_int_eq(cr_router_match(&router, 0, S("example.com"), S("/x")), 2);
    ck_assert_int_eq(cr_router_match(&router, 0, S("EXAMPLE.com:8080"), S("/x")), 2);
    ck_assert_int_eq(cr_router_match(&router, 0, S("other.org"), S("/x")), 3);
    ck_assert_int_eq(cr_router_match(&router, 0, S("example.com.evil"), S("/x")), 3);
    ck_assert_int_eq(cr_router_match(&router, 0, S("[::1]:8080"), S("/x")), 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_prefix_segment_boundary);
    tcase_add_test(tc, test_first_match_in_order);
    tcase_add_test(tc, test_declined_continues);
    tcase_add_test(tc, test_host_scoping);
    tcase_add_test(tc, test_host_lists_and_wildcards);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
