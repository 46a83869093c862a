// Messages an operator meets when a configuration is wrong: each names the
// input at fault (the key, or the variable that set it), says what is
// allowed, and never adds problems that are only echoes of another.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/loader.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::config;
using orchestratord::test::TempDir;

namespace {

constexpr const char* kMinimal = R"(
database:
  url: postgres://app@db.example:5432/events
replica_sets:
  - name: main
)";

constexpr const char* kTwoReplicaSets = R"(
database:
  url: postgres://app@db.example:5432/events
replica_sets:
  - name: a
  - name: b
)";

// The problems a load reports, one per line; empty when it succeeds.
std::string problems(const LoadOptions& options) {
    try {
        load_config(options);
    } catch (const ConfigError& e) {
        std::string all;
        for (const auto& problem : e.problems()) all += problem + "\n";
        return all;
    }
    return "";
}

std::string problems(const std::string& yaml, Environment env = {}) {
    TempDir dir;
    LoadOptions options;
    options.file = dir.write("orchestratord.yaml", yaml);
    options.env = std::move(env);
    return problems(options);
}

constexpr uid_t kNobody = 65534;

// problems(options) in a child process running as nobody.
std::string problems_as_nobody(const LoadOptions& options) {
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(pipe_ends[0]);
        if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(1);
        const std::string message = problems(options);
        const bool written =
            ::write(pipe_ends[1], message.data(), message.size()) == static_cast<ssize_t>(message.size());
        ::_exit(written ? 0 : 1);
    }
    ::close(pipe_ends[1]);
    std::string message;
    char buffer[512];
    for (ssize_t got; (got = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;) message.append(buffer, got);
    ::close(pipe_ends[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return message;
}

}  // namespace

TEST_CASE("a value above a key's maximum gives the range, not the wording for values below it", "[config][messages]") {
    CHECK(problems(kMinimal, {{"BATCH_SIZE", "99999999999"}}) ==
          "BATCH_SIZE (replica_sets[0].batch_size): BatchSize must be between 1 and 1000000 (got \"99999999999\")\n");
    // More digits than any integer holds is out of range too, not malformed.
    CHECK(problems(kMinimal, {{"BATCH_SIZE", "999999999999999999999999"}}) ==
          "BATCH_SIZE (replica_sets[0].batch_size): BatchSize must be between 1 and 1000000 (got "
          "\"999999999999999999999999\")\n");
    // Below the minimum the reference's wording stays.
    CHECK(problems(kMinimal, {{"BATCH_SIZE", "0"}}) ==
          "BATCH_SIZE (replica_sets[0].batch_size): BatchSize must be positive (got \"0\")\n");
    CHECK(problems(kMinimal, {{"BATCH_SIZE", "-99999999999999999999"}}) ==
          "BATCH_SIZE (replica_sets[0].batch_size): BatchSize must be positive (got \"-99999999999999999999\")\n");
}

TEST_CASE("a rule between keys broken by an environment variable names the variable", "[config][messages]") {
    // The file's stale timeout (30s default) meets HEARTBEAT_INTERVAL.
    CHECK(problems(kMinimal, {{"HEARTBEAT_INTERVAL", "30s"}}) ==
          "replica_sets[0].stale_worker_timeout: StaleWorkerTimeout must be greater than HeartbeatInterval (30s <= "
          "30s; HEARTBEAT_INTERVAL sets replica_sets[0].heartbeat_interval)\n");
    CHECK(problems(kMinimal, {{"STALE_WORKER_TIMEOUT", "5s"}}) ==
          "STALE_WORKER_TIMEOUT (replica_sets[0].stale_worker_timeout): StaleWorkerTimeout must be greater than "
          "HeartbeatInterval (5s <= 5s)\n");
    // Set in the file, only the key is named.
    CHECK(problems(std::string(kMinimal) + "    heartbeat_interval: 30s\n") ==
          "replica_sets[0].stale_worker_timeout: StaleWorkerTimeout must be greater than HeartbeatInterval (30s <= "
          "30s)\n");
}

TEST_CASE("REPLICA_SET with several replica sets in the file is one problem, not duplicates as well",
          "[config][messages]") {
    CHECK(problems(kTwoReplicaSets, {{"REPLICA_SET", "c"}}) ==
          "REPLICA_SET: cannot choose a name for 2 replica sets; remove it or declare one replica set in the file\n");
}

TEST_CASE("a config file that cannot be read says why, and as whom", "[config][messages]") {
    TempDir dir;
    LoadOptions options;
    options.file = dir.path();
    CHECK(problems(options) == "config file " + options.file + ": is a directory, not a file\n");

    options.file = dir.write("secret.yaml", kMinimal);
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(options.file.c_str(), 0) == 0);
    // root reads any file: load it as nobody then.
    const uid_t reader = ::geteuid() == 0 ? kNobody : ::geteuid();
    const std::string message = ::geteuid() == 0 ? problems_as_nobody(options) : problems(options);
    CHECK_THAT(message, Catch::StartsWith("config file " + options.file + ": cannot be read: Permission denied"));
    CHECK_THAT(message, Catch::Contains("running as uid " + std::to_string(reader)));
    CHECK_THAT(message, Catch::Contains("the file is owned by uid " + std::to_string(::geteuid())));
    CHECK_THAT(message, Catch::Contains("mode 0000"));
}

TEST_CASE("printing the migration SQL needs neither a database url nor a replica set", "[config][messages]") {
    LoadOptions options;
    options.workers_required = false;
    const Config config = load_config(options);
    CHECK(config.replica_sets.empty());
    CHECK(config.event_store.schema == "public");
    // Values given are still checked.
    options.env = {{"ORCHESTRATORD_EVENT_STORE_SCHEMA", "not valid"}};
    CHECK_THAT(problems(options), Catch::Contains("ORCHESTRATORD_EVENT_STORE_SCHEMA (event_store.schema)"));
    // Running workers still needs both.
    LoadOptions run;
    CHECK_THAT(problems(run), Catch::Contains("database.url: database url cannot be empty"));
    CHECK_THAT(problems(run), Catch::Contains("replica_sets: ReplicaSet cannot be empty"));
}
