#pragma once
// A real child process for tests: started with extra environment, its stderr
// and stdout captured to a file, signalled and awaited with a deadline.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace orchestratord::test {

struct ExitStatus {
    bool exited = false;  // false: killed by a signal
    int code = 0;         // exit code, or the signal number
};

class ChildProcess {
public:
    // env: variables to set (value) or, with std::nullopt, to remove.
    // max_open_files: RLIMIT_NOFILE (soft and hard) for the child, as
    // systemd's LimitNOFILE= would set it.
    ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env,
                 const std::string& output_file, std::optional<unsigned> max_open_files = std::nullopt);
    ~ChildProcess();  // kills the child if it is still running
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int signal) const;
    // Waits up to `timeout` for the child to end.
    std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
    // The captured output so far.
    std::string output() const;
    // Waits until the output contains `text`; false on timeout or exit.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    std::string output_file_;
    std::optional<ExitStatus> status_;
};

// Runs a command to completion and returns its exit status and output.
struct RunResult {
    ExitStatus status;
    std::string output;
};
RunResult run_command(const std::vector<std::string>& argv,
                      const std::map<std::string, std::optional<std::string>>& env = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace orchestratord::test
