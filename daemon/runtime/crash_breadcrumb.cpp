#include "runtime/crash_breadcrumb.hpp"
#include "log/quoted.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace orchestratord::runtime {
namespace {

constexpr size_t kTextSize = 1024;
constexpr size_t kPathSize = 4096;
// Room left in a path for "/crash-<replica set>.<projection>.tmp".
constexpr size_t kFileNameRoom = 200;
constexpr size_t kAlternateStackSize = 64 * 1024;
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

// What the signal handler may read: plain arrays in a thread-local of a
// trivial type (no lazy initialisation, no destructor), filled by the
// handler thread itself before a plugin call and disarmed after it.
struct ThreadBreadcrumb {
    char log_suffix[kTextSize];
    size_t log_suffix_size;
    char file[kPathSize];
    char temporary[kPathSize];
    char content[kTextSize];
    size_t content_size;
    volatile sig_atomic_t armed;
};
thread_local ThreadBreadcrumb t_breadcrumb;

// A handler thread's alternate signal stack: a plugin that overflows its
// stack faults with no stack left to run the signal handler on.
class AlternateStack {
public:
    ~AlternateStack() {
        if (!memory_) return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        ::sigaltstack(&off, nullptr);
    }
    void ensure() {
        if (memory_) return;
        memory_ = std::make_unique<char[]>(kAlternateStackSize);
        stack_t stack{};
        stack.ss_sp = memory_.get();
        stack.ss_size = kAlternateStackSize;
        if (::sigaltstack(&stack, nullptr) != 0) memory_.reset();
    }

private:
    std::unique_ptr<char[]> memory_;
};
thread_local AlternateStack t_alternate_stack;

// Copies `text` with its terminating NUL; false (and nothing usable) when it
// does not fit.
bool copy_text(char* to, size_t capacity, const std::string& text) {
    if (text.size() + 1 > capacity) {
        to[0] = '\0';
        return false;
    }
    std::memcpy(to, text.c_str(), text.size() + 1);
    return true;
}

const char* signal_name(int signal) {
    switch (signal) {
        case SIGSEGV:
            return "SIGSEGV";
        case SIGBUS:
            return "SIGBUS";
        case SIGILL:
            return "SIGILL";
        case SIGFPE:
            return "SIGFPE";
        case SIGABRT:
            return "SIGABRT";
    }
    return "a fatal signal";
}

// Async-signal-safe from here to the end of on_fatal_signal(): write(),
// open(), close(), rename(), raise() and strlen() only.
void write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) continue;
            return;
        }
        data += written;
        size -= static_cast<size_t>(written);
    }
}

void write_text(int fd, const char* text) {
    write_all(fd, text, std::strlen(text));
}

extern "C" void on_fatal_signal(int signal, siginfo_t*, void*) {
    const int saved_errno = errno;
    const char* name = signal_name(signal);
    const ThreadBreadcrumb& breadcrumb = t_breadcrumb;
    write_text(STDERR_FILENO, "fatal signal ");
    write_text(STDERR_FILENO, name);
    if (breadcrumb.armed == 0) {
        write_text(STDERR_FILENO, " outside any projection handler\n");
    } else {
        write_all(STDERR_FILENO, breadcrumb.log_suffix, breadcrumb.log_suffix_size);
        if (breadcrumb.file[0] != '\0') {
            // Renamed into place, so the next start never reads half a file.
            const int fd = ::open(breadcrumb.temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                write_text(fd, "signal=");
                write_text(fd, name);
                write_all(fd, breadcrumb.content, breadcrumb.content_size);
                ::close(fd);
                ::rename(breadcrumb.temporary, breadcrumb.file);
            } else {
                write_text(STDERR_FILENO, "could not write the crash breadcrumb file ");
                write_text(STDERR_FILENO, breadcrumb.temporary);
                write_text(STDERR_FILENO, "\n");
            }
        }
    }
    errno = saved_errno;
    // SA_RESETHAND gave the signal its default action back. A fault happens
    // again when the instruction is retried, but a signal sent with kill()
    // would not: raise it once more. It stays blocked until this returns,
    // then the default action (a core dump) ends the process with it.
    ::raise(signal);
}

void install_signal_handlers() {
    struct sigaction action {};
    action.sa_sigaction = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    for (int signal : kFatalSignals) ::sigaction(signal, &action, nullptr);
}

// Replica set and projection names are validated by the configuration; any
// other character is replaced all the same, so the name can never leave the
// directory. Replica set names have no '.', so the first '.' separates the two.
std::string breadcrumb_file(const std::string& directory, const std::string& replica_set,
                            const std::string& projection) {
    auto safe = [](std::string name) {
        for (auto& c : name) {
            const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                 c == '-' || c == '_' || c == '.';
            if (!allowed) c = '_';
        }
        if (!name.empty() && name[0] == '.') name[0] = '_';
        return name;
    };
    return directory + "/crash-" + safe(replica_set) + "." + safe(projection);
}

bool parse_number(const std::string& text, int64_t& out) {
    try {
        size_t used = 0;
        out = std::stoll(text, &used);
        return used == text.size();
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

bool install_crash_handler(const std::string& state_directory, std::string& problem) {
    static std::once_flag installed;
    std::call_once(installed, install_signal_handlers);
    if (state_directory.empty()) {
        problem = "state_directory is empty";
        return false;
    }
    if (state_directory.size() + kFileNameRoom > kPathSize) {
        problem = "state_directory " + state_directory + " is too long";
        return false;
    }
    struct stat info {};
    if (::stat(state_directory.c_str(), &info) != 0) {
        problem = "state_directory " + state_directory + " cannot be used: " + std::strerror(errno);
        return false;
    }
    if (!S_ISDIR(info.st_mode)) {
        problem = "state_directory " + state_directory + " is not a directory";
        return false;
    }
    if (::access(state_directory.c_str(), W_OK | X_OK) != 0) {
        problem = "state_directory " + state_directory + " is not writable: " + std::strerror(errno);
        return false;
    }
    return true;
}

ArmedBreadcrumb::ArmedBreadcrumb(const CrashBreadcrumb& breadcrumb) {
    t_alternate_stack.ensure();
    ThreadBreadcrumb& armed = t_breadcrumb;
    armed.armed = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    copy_text(armed.log_suffix, kTextSize, breadcrumb.log_suffix);
    armed.log_suffix_size = std::strlen(armed.log_suffix);
    copy_text(armed.content, kTextSize, breadcrumb.content);
    armed.content_size = std::strlen(armed.content);
    if (!copy_text(armed.file, kPathSize, breadcrumb.file) ||
        !copy_text(armed.temporary, kPathSize, breadcrumb.temporary)) {
        armed.file[0] = '\0';
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    armed.armed = 1;
}

ArmedBreadcrumb::~ArmedBreadcrumb() {
    t_breadcrumb.armed = 0;
}

CrashIsolation::CrashIsolation(std::string state_directory, std::string replica_set, std::string projection,
                               int64_t crash_limit)
    : replica_set_(std::move(replica_set)), projection_(std::move(projection)), crash_limit_(crash_limit) {
    if (state_directory.empty()) return;
    file_ = breadcrumb_file(state_directory, replica_set_, projection_);
    load();
}

// The file is kept until the suspect events are behind the projection: a
// restart for any other reason before that (SIGTERM, a crash elsewhere)
// must not reset the count.
void CrashIsolation::load() {
    std::ifstream in(file_);
    if (!in) return;  // no crash last time
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::map<std::string, std::string> fields;
    std::istringstream words(text);
    std::string word;
    while (words >> word) {
        const size_t equals = word.find('=');
        if (equals != std::string::npos) fields[word.substr(0, equals)] = word.substr(equals + 1);
    }
    Suspect suspect;
    suspect.signal = fields["signal"];
    const bool valid =
        !suspect.signal.empty() && fields["replica_set"] == replica_set_ && fields["projection"] == projection_ &&
        parse_number(fields["first_position"], suspect.first) && parse_number(fields["last_position"], suspect.last) &&
        parse_number(fields["crashes"], suspect.crashes) && suspect.first <= suspect.last && suspect.crashes > 0;
    if (!valid) {
        spdlog::warn(
            "ignoring a crash breadcrumb file that is not one of this projection's replica_set={} "
            "projection={} file={} content={}",
            replica_set_, projection_, file_, log::quoted(text.substr(0, 200)));
        std::remove(file_.c_str());
        return;
    }
    const bool settled = suspect.first == suspect.last && suspect.crashes >= crash_limit_;
    const char* next = settled                         ? "the on_error policy applies to the event without calling "
                                                         "the handler again"
                       : suspect.first == suspect.last ? "the event is delivered alone again"
                                                       : "delivering these events one by one to find the one that "
                                                         "crashes it";
    spdlog::error(
        "the process crashed in this projection's handler; {} replica_set={} projection={} signal={} "
        "first_position={} last_position={} crashes={} crash_limit={}",
        next, replica_set_, projection_, suspect.signal, suspect.first, suspect.last, suspect.crashes, crash_limit_);
    suspect_ = std::move(suspect);
}

bool CrashIsolation::suspects(int64_t first, int64_t last) const {
    return suspect_ && first <= suspect_->last && last >= suspect_->first;
}

CrashBreadcrumb CrashIsolation::breadcrumb(int64_t first, int64_t last) const {
    const bool again = suspect_ && suspect_->first == first && suspect_->last == last;
    const std::string crash = std::to_string((again ? suspect_->crashes : 0) + 1);
    const std::string where = " replica_set=" + replica_set_ + " projection=" + projection_ +
                              " first_position=" + std::to_string(first) + " last_position=" + std::to_string(last);
    CrashBreadcrumb breadcrumb;
    if (file_.empty()) {
        breadcrumb.log_suffix = " in projection handler" + where + " crash_isolation=off\n";
        return breadcrumb;
    }
    breadcrumb.log_suffix = " in projection handler" + where + " crash=" + crash + "\n";
    breadcrumb.file = file_;
    breadcrumb.temporary = file_ + ".tmp";
    breadcrumb.content = where + " crashes=" + crash + "\n";
    return breadcrumb;
}

std::optional<std::string> CrashIsolation::verdict(int64_t position) const {
    if (!suspect_ || suspect_->first != position || suspect_->last != position || suspect_->crashes < crash_limit_) {
        return std::nullopt;
    }
    return "the handler crashed the process " + std::to_string(suspect_->crashes) + " times (" + suspect_->signal + ")";
}

void CrashIsolation::passed(int64_t position) {
    if (!suspect_ || position < suspect_->last) return;
    spdlog::info(
        "the events the process crashed on are behind this projection now replica_set={} projection={} "
        "first_position={} last_position={}",
        replica_set_, projection_, suspect_->first, suspect_->last);
    suspect_.reset();
    std::remove(file_.c_str());
}

}  // namespace orchestratord::runtime
