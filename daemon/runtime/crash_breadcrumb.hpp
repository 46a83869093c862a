#pragma once
// What is left behind when plugin code crashes the process (SIGSEGV, SIGBUS,
// SIGILL, SIGFPE, SIGABRT), and how the next start uses it. Plugins run
// in-process, so a crash in a handler ends the daemon; without a trace,
// systemd would restart it onto the same event forever.
//
// Before each handler call the handler thread arms a breadcrumb: text
// formatted in advance (replica set, projection, the call's positions, how
// often the process already crashed on exactly these positions) in a
// thread-local buffer. The fatal-signal handler, using async-signal-safe
// calls only, writes it to stderr (the journal under systemd) and to a file
// in the state directory, then lets the signal's default action end the
// process. The next start reads that file (CrashIsolation): it delivers the
// suspect events one by one, and once the process has crashed crash_limit
// times on a single event the projection's on_error policy applies to it
// without calling the handler again.
#include <cstdint>
#include <optional>
#include <string>

namespace orchestratord::runtime {

// Installs the fatal-signal handler (once per process). `state_directory`
// is checked: true when breadcrumb files can be written there; otherwise
// `problem` says why and crash isolation is off (crashes are still logged).
bool install_crash_handler(const std::string& state_directory, std::string& problem);

// The text the fatal-signal handler writes for one handler call, formatted
// on the event loop (allocation is fine there, not in a signal handler).
struct CrashBreadcrumb {
    std::string log_suffix;  // after "fatal signal SIGSEGV", up to the newline
    std::string file;        // empty when crash isolation is off
    std::string temporary;   // written first, renamed to `file`
    std::string content;     // after "signal=SIGSEGV"
};

// Armed on the handler thread around one plugin call: a fatal signal on this
// thread meanwhile writes the breadcrumb. Also gives the thread an alternate
// signal stack, so a handler that overflows its stack is reported too.
class ArmedBreadcrumb {
public:
    explicit ArmedBreadcrumb(const CrashBreadcrumb& breadcrumb);
    ~ArmedBreadcrumb();
    ArmedBreadcrumb(const ArmedBreadcrumb&) = delete;
    ArmedBreadcrumb& operator=(const ArmedBreadcrumb&) = delete;
};

// One projection's crash history: the breadcrumb its previous process left
// (read at start), the breadcrumbs of its calls, and the verdict on an event
// that crashed the process too often.
class CrashIsolation {
public:
    // `state_directory` empty: crash isolation is off (no file read or written).
    CrashIsolation(std::string state_directory, std::string replica_set, std::string projection, int64_t crash_limit);

    bool enabled() const { return !file_.empty(); }
    // [first, last] overlaps the events the previous process crashed on:
    // deliver them one by one, to pin the crash to one event.
    bool suspects(int64_t first, int64_t last) const;
    // The breadcrumb of a call on [first, last].
    CrashBreadcrumb breadcrumb(int64_t first, int64_t last) const;
    // The error the on_error policy records when the process crashed
    // crash_limit times on the single event at `position`; nullopt when the
    // handler may be called.
    std::optional<std::string> verdict(int64_t position) const;
    int64_t crashes() const { return suspect_ ? suspect_->crashes : 0; }
    // Everything up to `position` was handled (or dead-lettered, or the
    // projection paused there): the suspect is done with, its file removed.
    void passed(int64_t position);

private:
    struct Suspect {
        int64_t first = 0;
        int64_t last = 0;
        int64_t crashes = 0;
        std::string signal;
    };
    void load();

    std::string replica_set_;
    std::string projection_;
    int64_t crash_limit_ = 0;
    std::string file_;  // the breadcrumb file; empty when crash isolation is off
    std::optional<Suspect> suspect_;
};

}  // namespace orchestratord::runtime
