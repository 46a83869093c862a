// Masking of connection strings and of libpq's messages, without a server:
// passwords with URL delimiters in every form a user might write them, in
// check-config's output, the loader's errors and failed connections.
#include <catch2/catch.hpp>

#include "config/loader.hpp"
#include "pg/async_connection.hpp"
#include "pg/blocking_connection.hpp"
#include "pg/conninfo.hpp"
#include "support/child_process.hpp"
#include "support/password_forms.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
using namespace orchestratord::test;
namespace asio = boost::asio;

TEST_CASE("a well-formed connection string is shown rebuilt with the password masked", "[conninfo]") {
    for (const auto& password : special_passwords()) {
        const auto forms = connection_forms("app", password, "db.example", "5432", "events");
        INFO(password);
        CHECK(pg::mask_conninfo(forms[0].conninfo) == "postgresql://app:****@db.example:5432/events");
        CHECK(pg::mask_conninfo(forms[2].conninfo) == "postgresql://app:****@db.example:5432/events");
        CHECK(pg::mask_conninfo(forms[4].conninfo) == "user=app password=**** dbname=events host=db.example port=5432");
    }
    CHECK(pg::mask_conninfo("postgres://h/db?application_name=a%20b&sslpassword=x") ==
          "postgres://h/db?application_name=a%20b&sslpassword=****");
}

TEST_CASE("no form of a password with URL delimiters shows in the masked string", "[conninfo]") {
    for (const auto& password : special_passwords()) {
        for (const auto& form : connection_forms("app", password, "db.example", "5432", "events")) {
            INFO(form.description << ": " << form.conninfo);
            check_no_password(pg::mask_conninfo(form.conninfo), password);
            if (auto error = pg::conninfo_error(form.conninfo)) check_no_password(*error, password);
        }
    }
}

TEST_CASE("libpq's reason for refusing a malformed string quotes none of it", "[conninfo]") {
    CHECK(pg::conninfo_error("postgresql://app:Alpha7%zzBravo9@h/db") == "invalid percent-encoded token");
    CHECK(pg::conninfo_error("host=h password=Alpha7 Bravo9") == "missing \"=\" after a keyword");
    CHECK(pg::conninfo_error("host=h password='Alpha7 Bravo9' bogus=1") == "invalid connection option");
    CHECK(pg::mask_conninfo("postgresql://app:Alpha7%zzBravo9@h/db") ==
          "(a postgresql URL libpq cannot parse, not shown)");
    CHECK_FALSE(pg::conninfo_error("postgresql://app:Alpha7%3FBravo9@h/db"));
}

TEST_CASE("a port that is not a number is refused before any connection is tried", "[conninfo]") {
    const std::string refused = "invalid port: expected a number from 1 to 65535";
    CHECK(pg::conninfo_error("postgres://app@h:notaport/db") == refused);
    CHECK(pg::conninfo_error("host=h port=70000 dbname=db") == refused);
    CHECK(pg::conninfo_error("postgres://app@h1:5432,h2:x5433/db") == refused);
    CHECK_FALSE(pg::conninfo_error("postgres://app@h1:5432,h2:5433/db"));
    CHECK_FALSE(pg::conninfo_error("postgres://app@h1,h2:5433/db"));  // an empty port is the default
    CHECK_FALSE(pg::conninfo_error("host=/run/postgresql port=5432 dbname=db"));
}

TEST_CASE("check-config never prints the password", "[conninfo][config]") {
    for (const auto& password : special_passwords()) {
        for (const auto& form : connection_forms("app", password, "db.example", "5432", "events")) {
            INFO(form.description << ": " << form.conninfo);
            const auto result = run_command(
                {ORCHESTRATORD_BIN, "check-config"},
                {{"DATABASE_URL", form.conninfo}, {"REPLICA_SET", "masking"}, {"ORCHESTRATORD_CONFIG", std::nullopt}});
            CHECK_THAT(result.output, Catch::Contains("database.url") || Catch::Contains("DATABASE_URL"));
            check_no_password(result.output, password);
        }
    }
}

TEST_CASE("a failed connection names the masked string and never the password", "[conninfo]") {
    // Nothing listens on port 1; an unencoded '@' makes libpq look up a host
    // name made of the password's second half.
    for (const auto& password : special_passwords()) {
        for (const auto& form : connection_forms("app", password, "127.0.0.1", "1", "db")) {
            INFO(form.description << ": " << form.conninfo);
            std::string blocking_error;
            try {
                pg::BlockingConnection connection(form.conninfo, 2);
            } catch (const std::exception& e) {
                blocking_error = e.what();
            }
            CHECK_THAT(blocking_error, Catch::StartsWith("connect to PostgreSQL at "));
            check_no_password(blocking_error, password);

            std::string async_error;
            try {
                run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
                    pg::AsyncConnection connection(io);
                    co_await connection.connect(form.conninfo, "conninfo-test");
                });
            } catch (const std::exception& e) {
                async_error = e.what();
            }
            CHECK_THAT(async_error, Catch::StartsWith("connect to PostgreSQL at "));
            check_no_password(async_error, password);
        }
    }
}

TEST_CASE("the daemon's start-up error for an unreachable server never shows the password", "[conninfo]") {
    for (const auto& password : special_passwords()) {
        for (const auto& form : connection_forms("app", password, "127.0.0.1", "1", "db")) {
            INFO(form.description << ": " << form.conninfo);
            const auto result = run_command(
                {ORCHESTRATORD_BIN},
                {{"DATABASE_URL", form.conninfo}, {"REPLICA_SET", "masking"}, {"ORCHESTRATORD_CONFIG", std::nullopt}});
            CHECK(result.status.code != 0);
            CHECK_THAT(result.output, Catch::Contains("cannot start") || Catch::Contains("DATABASE_URL"));
            check_no_password(result.output, password);
        }
    }
}
