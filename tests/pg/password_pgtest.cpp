// Passwords with URL delimiters against a real server that asks for them
// (scripts/pg-private.sh makes the server require a password of the roles
// below): a wrong one is refused without being shown, a right one connects
// and the daemon's start-up log masks it.
#include <catch2/catch.hpp>

#include <csignal>

#include "pg/blocking_connection.hpp"
#include "support/child_process.hpp"
#include "support/event_store_fixture.hpp"
#include "support/password_forms.hpp"
#include "support/pg_env.hpp"

using namespace orchestratord;
using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// Its password holds every delimiter, so a URL needs it percent-encoded.
constexpr const char* kRole = "orchestratord_password_test";
const std::string kPassword = "Charlie3?@%/#: Delta4";
// Its password can be written unencoded in a URL, as users do.
constexpr const char* kRawRole = "orchestratord_password_test_raw";
const std::string kRawPassword = "Charlie3?#: Delta4";

std::string host() {
    return env_or("PGHOST", "127.0.0.1");
}
std::string port() {
    return env_or("PGPORT", "5432");
}

// Creates both roles (superusers, so a daemon can run as them) with their
// passwords, one test process at a time: concurrent ALTER ROLEs of the same
// role fail with "tuple concurrently updated".
void ensure_roles() {
    pg::BlockingConnection admin(pg_url());
    admin.exec("BEGIN");
    admin.exec("SELECT pg_advisory_xact_lock(hashtext('orchestratord_password_test'))");
    for (const auto& [role, password] : {std::pair{kRole, kPassword}, std::pair{kRawRole, kRawPassword}}) {
        admin.exec_script(std::string("DO $$ BEGIN CREATE ROLE ") + role +
                              " LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                          "create the role");
        admin.exec_script(std::string("ALTER ROLE ") + role + " PASSWORD '" + password + "'", "set its password");
    }
    admin.exec("COMMIT");
    // Against a server that trusts these roles, a wrong password would prove nothing.
    const bool refused = [] {
        try {
            pg::BlockingConnection(connection_forms(kRole, "wrong", host(), port(), "postgres")[0].conninfo);
            return false;
        } catch (const pg::Error&) {
            return true;
        }
    }();
    if (!refused)
        FAIL("the test server does not ask " << kRole << " for a password: start it with scripts/pg-private.sh");
}

}  // namespace

TEST_CASE("a wrong password is refused and no error shows it", "[pg][password]") {
    ensure_roles();
    EventStoreFixture fixture("pw_wrong");
    const std::string config = fixture.config_file("");
    for (const auto& wrong : special_passwords()) {
        for (const auto& form : connection_forms(kRole, wrong, host(), port(), "postgres")) {
            INFO(form.description << ": " << form.conninfo);
            std::string error;
            try {
                pg::BlockingConnection connection(form.conninfo);
            } catch (const pg::Error& e) {
                error = e.what();
            }
            CHECK_THAT(error, Catch::StartsWith("connect to PostgreSQL at "));
            check_no_password(error, wrong);
            if (form.description == "URL, percent-encoded" || form.description == "key=value, quoted") {
                CHECK_THAT(error, Catch::Contains("password authentication failed for user \"" + std::string(kRole)));
            }
        }
        // The same through the commands an operator runs.
        for (const auto& form : connection_forms(kRole, wrong, host(), port(), "postgres")) {
            INFO(form.description << ": " << form.conninfo);
            const auto migrate =
                run_command({ORCHESTRATORD_BIN, "migrate", "--config", config}, {{"DATABASE_URL", form.conninfo}});
            CHECK(migrate.status.code != 0);
            check_no_password(migrate.output, wrong);
            const auto daemon = run_command({ORCHESTRATORD_BIN, "--config", config}, {{"DATABASE_URL", form.conninfo}});
            CHECK(daemon.status.code != 0);
            check_no_password(daemon.output, wrong);
        }
    }
}

TEST_CASE("the daemon's start-up log shows the URL with the password masked", "[pg][password]") {
    ensure_roles();
    EventStoreFixture fixture("pw_startup");
    const std::string config = fixture.config_file("");
    struct Case {
        std::string password;
        ConnectionForm form;
        std::string shown;  // how the start-up line shows it
    };
    const auto forms = connection_forms(kRole, kPassword, host(), port(), "postgres");
    const auto raw_forms = connection_forms(kRawRole, kRawPassword, host(), port(), "postgres");
    const std::string url = "url=postgresql://" + std::string(kRole) + ":****@" + host() + ":" + port() + "/postgres";
    const std::vector<Case> cases = {
        {kPassword, forms[0], url},
        {kPassword, forms[2], url},
        {kPassword, forms[4], "password=****"},
        {kRawPassword, raw_forms[1], "url=postgresql://" + std::string(kRawRole) + ":****@" + host() + ":" + port()},
        {kRawPassword, raw_forms[4], "password=****"},
    };
    int run = 0;
    for (const auto& c : cases) {
        INFO(c.form.description << ": " << c.form.conninfo);
        // The right password: the string reaches the server intact.
        REQUIRE_NOTHROW(pg::BlockingConnection(c.form.conninfo));
        auto daemon = fixture.start_daemon(config, "daemon" + std::to_string(++run) + ".log",
                                           {{"DATABASE_URL", c.form.conninfo}});
        const bool connected = daemon->wait_for_output("events_table=", 15s);
        daemon->signal(SIGTERM);
        daemon->wait(10s);
        const std::string log = daemon->output();
        INFO(log);
        CHECK(connected);
        CHECK_THAT(log, Catch::Contains("connected to PostgreSQL") && Catch::Contains(c.shown));
        check_no_password(log, c.password);
    }
}
