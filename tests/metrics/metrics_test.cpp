// docs/metrics.md and the registry name the same families, with the same
// types and labels: a family added to the code without its documentation, or
// documented but never registered, fails here.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "metrics/metrics.hpp"

using orchestratord::metrics::Metrics;
using orchestratord::metrics::WorkerState;

namespace {

struct Family {
    std::string type;
    std::set<std::string> labels;
    bool operator==(const Family& other) const { return type == other.type && labels == other.labels; }
};

std::ostream& operator<<(std::ostream& out, const std::map<std::string, Family>& families) {
    for (const auto& [name, family] : families) {
        out << name << " " << family.type << " {";
        for (const auto& label : family.labels) out << label << " ";
        out << "}\n";
    }
    return out;
}

// The tables of docs/metrics.md: | `name` | type | `label`, `label` | meaning |
std::map<std::string, Family> documented() {
    std::ifstream in(ORCHESTRATORD_SOURCE_DIR "/docs/metrics.md");
    REQUIRE(in);
    static const std::regex row(R"(^\| `(pupsourcing_orchestrator_[a-z_]+)` \| ([a-z]+) \| ([^|]*) \|)");
    static const std::regex label("`([a-z_]+)`");
    std::map<std::string, Family> families;
    std::string line;
    while (std::getline(in, line)) {
        std::smatch match;
        if (!std::regex_search(line, match, row)) continue;
        Family family{match[2].str(), {}};
        const std::string labels = match[3].str();
        for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label); it != std::sregex_iterator(); ++it) {
            family.labels.insert((*it)[1].str());
        }
        INFO(line);
        CHECK(families.count(match[1].str()) == 0);
        families[match[1].str()] = family;
    }
    return families;
}

// Every family of a registry in which each one has a sample: its type line
// and the label names of its samples (a histogram's `le` left out).
std::map<std::string, Family> rendered(const std::string& text) {
    static const std::regex type_line(R"(^# TYPE ([a-z_]+) ([a-z]+)$)");
    static const std::regex sample(R"(^([a-z_]+)\{([^}]*)\})");
    static const std::regex label(R"(([a-z_]+)=")");
    std::map<std::string, Family> families;
    std::istringstream in(text);
    std::string line;
    std::string current;
    while (std::getline(in, line)) {
        std::smatch match;
        if (std::regex_search(line, match, type_line)) {
            current = match[1].str();
            families[current].type = match[2].str();
        } else if (!current.empty() && std::regex_search(line, match, sample)) {
            const std::string labels = match[2].str();
            for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label); it != std::sregex_iterator();
                 ++it) {
                if ((*it)[1].str() != "le") families[current].labels.insert((*it)[1].str());
            }
        }
    }
    return families;
}

// A registry with a sample in every family, as a running daemon has.
std::string every_family() {
    Metrics metrics;
    auto cluster = metrics.cluster("rs");
    cluster.set_state("worker-1", WorkerState::running);
    metrics.projection("rs", "p");
    metrics.lag("rs", "p");
    metrics.head_position("rs");
    metrics.pool_connections_in_use();
    metrics.pool_connections_idle();
    metrics.set_build_info("1.2.3", "1.0");
    metrics.set_plugin_info("rs", "p", "plugin", "0.1");
    return metrics.render();
}

}  // namespace

TEST_CASE("docs/metrics.md documents exactly the families the registry exposes", "[metrics]") {
    const auto in_docs = documented();
    const auto in_registry = rendered(every_family());
    REQUIRE(in_docs.size() > 20);
    INFO("documented:\n" << in_docs << "exposed:\n" << in_registry);
    for (const auto& [name, family] : in_registry) {
        INFO("exposed, not documented alike: " << name);
        CHECK((in_docs.count(name) == 1 && in_docs.at(name) == family));
    }
    for (const auto& [name, family] : in_docs) {
        INFO("documented, not exposed: " << name);
        CHECK(in_registry.count(name) == 1);
    }
}

TEST_CASE("worker_state marks one state and forgets a worker's old id", "[metrics]") {
    Metrics metrics;
    auto cluster = metrics.cluster("rs");
    cluster.set_state("old", WorkerState::running);
    cluster.set_state("old", WorkerState::self_fenced);
    std::string text = metrics.render();
    CHECK_THAT(text, Catch::Contains(R"(worker_state{replica_set="rs",state="self_fenced",worker_id="old"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(worker_state{replica_set="rs",state="running",worker_id="old"} 0)"));
    cluster.set_state("new", WorkerState::running);
    text = metrics.render();
    CHECK_THAT(text, !Catch::Contains(R"(worker_id="old")"));
    CHECK_THAT(text, Catch::Contains(R"(worker_state{replica_set="rs",state="running",worker_id="new"} 1)"));
}

TEST_CASE("handles without a registry do nothing", "[metrics]") {
    const orchestratord::metrics::ProjectionMetrics none;
    none.events_processed.increment();
    none.paused.set(1);
    none.processing_duration.observe(0.5);
    orchestratord::metrics::ClusterMetrics cluster;
    cluster.set_state("w", WorkerState::running);
    SUCCEED("no registry was touched");
}

TEST_CASE("plugin_info keeps one series per projection across a plugin reload", "[metrics]") {
    Metrics metrics;
    metrics.set_plugin_info("rs", "p", "plugin", "0.1");
    metrics.set_plugin_info("rs", "q", "plugin", "0.1");
    metrics.set_plugin_info("rs", "p", "plugin", "0.2");
    const std::string text = metrics.render();
    CHECK_THAT(text, !Catch::Contains(R"(projection="p",replica_set="rs",version="0.1")"));
    CHECK_THAT(text, Catch::Contains(R"(projection="p",replica_set="rs",version="0.2")"));
    CHECK_THAT(text, Catch::Contains(R"(projection="q",replica_set="rs",version="0.1")"));
}
