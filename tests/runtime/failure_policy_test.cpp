// The pure half of the failure policy: how many tries a delivery gets and
// how long the waits between them are.
#include <catch2/catch.hpp>

#include "runtime/failure_policy.hpp"

using orchestratord::runtime::RetryRules;
using std::chrono::milliseconds;

namespace {

orchestratord::config::OnErrorConfig on_error(int64_t max_attempts, milliseconds initial, milliseconds max) {
    orchestratord::config::OnErrorConfig config;
    config.policy = orchestratord::config::OnErrorPolicy::dead_letter;
    config.max_attempts = max_attempts;
    config.initial_backoff = initial;
    config.max_backoff = max;
    return config;
}

}  // namespace

TEST_CASE("back-off doubles from initial_backoff up to max_backoff", "[runtime][failure]") {
    const RetryRules rules(on_error(10, milliseconds(100), milliseconds(1000)));
    std::vector<milliseconds> waits{rules.for_delivery(1, 7).backoff};
    while (waits.size() < 6) waits.push_back(rules.after(waits.back()));
    CHECK(waits == std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
                                             milliseconds(1000), milliseconds(1000)});
    // An event split out of a failed batch continues where the batch's wait left off.
    CHECK(rules.for_split_event(7).backoff == milliseconds(200));
}

TEST_CASE("a batch of several events gets one try, a single event max_attempts", "[runtime][failure]") {
    const RetryRules rules(on_error(3, milliseconds(10), milliseconds(100)));
    const auto batch = rules.for_delivery(5, 7);
    CHECK(batch.tried == 0);
    CHECK(batch.limit == 1);
    const auto single = rules.for_delivery(1, 7);
    CHECK(single.tried == 0);
    CHECK(single.limit == 3);
    CHECK(rules.back_off_before_split());
    CHECK_FALSE(RetryRules(on_error(1, milliseconds(10), milliseconds(100))).back_off_before_split());
}

TEST_CASE("an event's failed tries count towards its limit across deliveries", "[runtime][failure]") {
    RetryRules rules(on_error(3, milliseconds(10), milliseconds(100)));
    // The batch holding positions 7 and 8 failed once: it counts as each
    // event's first attempt.
    rules.record(7, false);
    rules.record(8, false);
    CHECK(rules.for_split_event(7).tried == 1);
    CHECK(rules.for_split_event(7).limit == 3);  // two more tries alone
    rules.record(7, false);
    rules.record(7, false);
    // Read again after an abandoned batch: the event has had all its tries,
    // but still gets one, so the failure is seen (and the policy applies).
    CHECK(rules.for_delivery(1, 7).tried == 3);
    CHECK(rules.for_delivery(1, 7).limit == 4);
    // A success forgets the event's tries.
    rules.record(8, true);
    CHECK(rules.tried(8) == 0);
    CHECK(rules.tried(7) == 3);
}

TEST_CASE("with max_attempts 1 an event split out of a failed batch still gets its own try", "[runtime][failure]") {
    RetryRules rules(on_error(1, milliseconds(10), milliseconds(100)));
    rules.record(7, false);  // the batch's only try
    const auto alone = rules.for_split_event(7);
    CHECK(alone.tried == 1);
    CHECK(alone.limit == 2);
}

TEST_CASE("tries of events every owned slice has passed are forgotten", "[runtime][failure]") {
    RetryRules rules(on_error(3, milliseconds(10), milliseconds(100)));
    rules.record(5, false);
    rules.record(9, false);
    rules.record(12, false);
    rules.forget_up_to(9);
    CHECK(rules.tried(5) == 0);
    CHECK(rules.tried(9) == 0);
    CHECK(rules.tried(12) == 1);
    rules.forget(12);
    CHECK(rules.tried(12) == 0);
}
